"""What a DomainThrottle's inbox accepts (ARCHITECTURE §3, SPEC S6)."""

from __future__ import annotations

from ._base import message


@message
class TryStart:
    """Ask: start a request now if the domain has capacity (S6.4: check and start are one step).

    The reply is a plain ``bool``; when it is True the caller owns one in-flight slot and gives
    it back once: with :class:`TransferEnded` as soon as the pack's last byte arrived, or else
    with :class:`RequestDone` when its fetch ends. ``identifier`` is the main-path identifier
    the request is for: refused while it waits in this domain's queue (the queue fetches it
    from here, so the main path neither jumps the round-robin nor fetches it twice). None
    (the default, also of traces recorded before it existed) is never refused for that.
    """

    identifier: str | None = None


@message
class TransferEnded:
    """A main-path request that :class:`TryStart` granted has received its last byte: its slot
    is free now, before the pack is indexed and the events released (S6.1 counts what the
    remote sees). A :class:`RequestDone` follows only when the request then failed (with
    ``freed`` and the reason, S18.2); a request that brought everything ends here (P4)."""

    url: str | None = None


@message
class RequestDone:
    """A main-path request that :class:`TryStart` granted has ended (success or failure).

    ``url`` is where it went; ``reason`` is None when it brought every needed object, else why
    not (S7.2's kinds, or ``missing_objects``): traces explain failures (S18.2). Both default
    to None so traces recorded before they existed still decode. ``freed`` True: the slot
    came back already with :class:`TransferEnded`; this message only says why the request
    failed after its transfer (S18.2), and is not sent when it brought everything.
    """

    url: str | None = None
    reason: str | None = None
    freed: bool = False


@message
class EnqueueIdentifier:
    """Queue ``identifier`` for this domain's round-robin; ``tried_urls`` merge on re-enqueue
    (S6.2)."""

    identifier: str
    tried_urls: frozenset[str] = frozenset()


@message
class SlotFreed:
    """The request a throttle-path FetchActor made for ``identifier`` ended; its slot is free
    now, before the release work that follows it (S5.2 order). ``url`` and ``reason`` as in
    :class:`RequestDone`."""

    identifier: str
    url: str | None = None
    reason: str | None = None


@message
class QueuedFetchDone:
    """A throttle-path FetchActor finished; ``url`` is None when no untried URL was left (S6.3).

    ``reason`` is None when the fetch brought every needed object (or none was made), else why
    not, as in :class:`RequestDone` (S18.2)."""

    identifier: str
    url: str | None
    reason: str | None = None


@message
class WindowFreed:
    """Timer: the oldest request has left the rate window, so capacity may be back (S6.3)."""


@message
class GetThrottleStatus:
    """Ask for a :class:`ThrottleStatus`."""


@message
class ThrottleStatus:
    """In-flight requests, queued identifiers and rate-window use of one domain."""

    domain: str
    in_flight: int
    queued: int
    window_used: int
    max_concurrent: int
    max_per_window: int


DomainThrottleMsg = (
    TryStart
    | RequestDone
    | TransferEnded
    | SlotFreed
    | EnqueueIdentifier
    | QueuedFetchDone
    | WindowFreed
    | GetThrottleStatus
)
