"""What the Scheduler's inbox accepts (ARCHITECTURE §3, SPEC S4)."""

from __future__ import annotations

from typing import Literal, get_args

from ._base import message

#: Why an identifier is queued: a user's event (a push is expected to follow), an event copied
#: from another relay, or a restart re-queueing what is held (S4.2). Only the sync config turns
#: a reason into a delay.
SyncReason = Literal["user", "synced", "restart"]
SYNC_REASONS: frozenset[str] = frozenset(get_args(SyncReason))
#: ``SyncFinished.reason`` of a sync that left its identifier to the domains' round-robin
#: queues, which fetch it from there (S5.3, S6.3).
THROTTLED = "throttled"
#: ``FetchAttempted.reason`` and ``SyncFinished.reason`` when every needed object is present
#: but the release pass after it reported errors (the Releaser logged each): the sync is
#: incomplete, so S4.1's backoff retries the release (S5.3, a deviation).
RELEASE_FAILED = "release_failed"


@message
class EnqueueSync:
    """An event for ``identifier`` entered purgatory for ``reason``; try a sync after the
    reason's delay (S4.2), debounced with any entry already queued (S4.3)."""

    identifier: str
    reason: SyncReason
    #: S19.2: adopted after another node stopped: queued only when this node has no entry (an
    #: entry it has keeps its own delay, a user's 180 s included).
    if_absent: bool = False

    def __post_init__(self) -> None:
        if self.reason not in SYNC_REASONS:
            raise ValueError(f"unknown sync reason {self.reason!r}")


@message
class Tick:
    """The periodic safety-net scan for ready entries (S4.4, every sync loop interval)."""


@message
class WakeUp:
    """The precise timer for the earliest ``next_attempt`` fired (S4.4, beyond the original)."""


@message
class SyncFinished:
    """A FetchActor finished one ``sync_identifier`` run (S4.5).

    ``url`` is the last URL the sync asked; ``reason`` is None when it completed, else why it
    did not: the last failed request's reason (S7.2's kinds or ``missing_objects``),
    ``throttled`` (left to the domains' queues), ``release_failed`` (nothing left to fetch, but
    the last release pass reported errors), ``no_url`` (no URL left to try) or ``error`` (a bug,
    logged with its traceback). Both default to None so older traces still decode.

    ``attempt`` is the sync's last request (S18.1), not told on its own: the Scheduler
    records it here, as the :class:`FetchAttempted` it would otherwise have received just
    before (one message fewer per identifier, P4). Earlier requests of the sync were told as
    ``FetchAttempted`` before the next one started. None when no request was made since.
    """

    identifier: str
    complete: bool
    url: str | None = None
    reason: str | None = None
    attempt: FetchAttempted | None = None


@message
class FetchAttempted:
    """A FetchActor made one request for ``identifier`` (S18.1): told upward after each one
    (on the main path, before the next request starts; the last one rides in
    :class:`SyncFinished`).

    ``queue`` is None on the main path, else the domain whose round-robin queue made it.
    ``outcome`` is ``released`` (every needed object it was asked for arrived; ``released``
    events left purgatory), ``partial`` (some arrived, ``missing`` did not) or ``failed``.
    ``reason`` is a fetch failure kind (S7.2) with its ``detail``, ``missing_objects`` when the
    server answered without ``missing`` of the needed objects, ``release_failed`` when they all
    arrived but the release pass after the request reported errors (``detail`` is the first), or
    None. ``started`` (the actor clock) and ``seconds`` time the request; ``pack_bytes`` is what
    it stored, None if unknown.
    """

    identifier: str
    url: str
    queue: str | None = None
    outcome: str = "failed"
    reason: str | None = None
    detail: str = ""
    fetched: int = 0
    missing: int = 0
    released: int = 0
    pack_bytes: int | None = None
    started: float | None = None
    seconds: float | None = None


@message
class GetSyncHistory:
    """Ask for a ``SyncHistoryReport`` (messages.history): one ``identifier``'s history, or up
    to ``limit`` identifiers, held ones first, most recently attempted first (S18.1)."""

    identifier: str | None = None
    limit: int = 50


@message
class GetSchedulerStatus:
    """Ask for a :class:`SchedulerStatus` listing at most ``limit`` upcoming attempts."""

    limit: int = 10


@message
class SchedulerStatus:
    """Reply to :class:`GetSchedulerStatus`; ``next_attempts``
    holds (identifier, seconds from now)."""

    queue_size: int
    in_progress: int
    next_attempts: tuple[tuple[str, float], ...] = ()


SchedulerMsg = (
    EnqueueSync
    | Tick
    | WakeUp
    | SyncFinished
    | FetchAttempted
    | GetSchedulerStatus
    | GetSyncHistory
)
