"""What crosses the port between the actors and the world (ARCHITECTURE §4), as messages.

``RepositoryData`` is what ``SyncContext.fetch_repository_data`` returns, ``FetchResult`` what
``SyncContext.fetch_oids`` returns; ``PortAnswer`` is the trace line of any port call's answer
(S13.3), so replay can give an actor the same world again. They are messages (frozen, slotted,
in the codec) because traces carry them.
"""

from __future__ import annotations

from typing import Any

from ._base import message

__all__ = [
    "LEASE_TTL",
    "LEDGER_POLL",
    "RENEW_INTERVAL",
    "AnnouncementInfo",
    "FetchResult",
    "LedgerAnswer",
    "PortAnswer",
    "RepositoryData",
]


@message
class AnnouncementInfo:
    """What sync needs of one repository announcement (kind 30617)."""

    owner: str
    identifier: str
    clone_urls: tuple[str, ...] = ()


@message
class RepositoryData:
    """The announcements of an identifier (store and announcement purgatory, any owner, in a
    deterministic order) plus the clone URLs of its held PR events (S3.1)."""

    identifier: str
    announcements: tuple[AnnouncementInfo, ...] = ()
    pr_clone_urls: tuple[str, ...] = ()

    def clone_urls(self) -> list[str]:
        """Every candidate URL once: announcement order, then PR order (S3.1)."""
        urls = [url for announcement in self.announcements for url in announcement.clone_urls]
        urls += self.pr_clone_urls  # a list, not a generator: asked twice per sync (P4)
        return list(dict.fromkeys(urls))


@message
class FetchResult:
    """What one fetch from one URL brought (S7.1, S18.1): one typed answer, not a bare list.

    ``oids``: the needed OIDs present afterwards and not before. ``missing``: how many of the
    needed OIDs that were absent before are still absent — the server answered without them
    (``missing_objects``). ``pack_bytes``: the size of the packs the fetch added to the
    repository, None when unknown (another fetch into the same repository overlapped).
    ``started`` and ``seconds`` are the actor clock's reading when the request began and how
    long it took; the port leaves them None and the actor's traced port fills them in, so a
    trace records them and replay hands the very same times back (S13.3).
    """

    oids: tuple[str, ...] = ()
    missing: int = 0
    pack_bytes: int | None = None
    started: float | None = None
    seconds: float | None = None

    @property
    def nothing_absent(self) -> bool:
        """Nothing asked for was absent, so the port made no request: the relay counts present
        objects as needed (S2.3). Not an attempt (S18.1) and not a request the remote saw."""
        return not self.oids and not self.missing


@message
class PortAnswer:
    """Trace line: the port answered ``method`` with ``value`` (JSON-ready or a message).

    A call that failed records ``failure`` — the fetch failure's reason (S7.2 kinds) with its
    ``url`` and ``detail``, and for a fetch when it ``started`` and how many ``seconds`` it took
    — or ``error``, the ``repr`` of an unexpected exception (a bug).
    """

    method: str
    value: Any = None
    failure: str | None = None
    url: str | None = None
    detail: str | None = None
    error: str | None = None
    started: float | None = None
    seconds: float | None = None


#: Seconds a lease or an in-flight ledger slot lives without renewal (S19.2): a SIGKILLed
#: node's work is free again within this, counted from its last renewal (the SPEC asks 15 s).
LEASE_TTL = 10.0
#: Seconds between two renewals of a node's leases and slots (two missed beats lose nothing).
RENEW_INTERVAL = 3.0
#: When only requests in flight fill a domain's limits, their end is news for the node that made
#: them, not for this one: ask the ledger again after this many seconds.
LEDGER_POLL = 0.25


@message
class LedgerAnswer:
    """The shared throttle ledger's answer to a check-and-start (S6.4 summed over nodes, S19.2).

    ``granted``: the slot is reserved in the ledger. Refused, ``retry_in`` is how many seconds
    from now a slot frees by the ledger's own reckoning (the oldest window entry leaves), or a
    short poll interval when only requests in flight on other nodes fill it (their completion
    reaches no actor of this node).
    """

    granted: bool
    retry_in: float = 0.0
