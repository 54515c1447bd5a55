"""The sync history as the Scheduler reports it (S18.1): replies to ``GetSyncHistory``.

Times are relative to the instant of the answer (``ago``, ``next_attempt_in``), because the
actors' clock is monotonic: whoever shows them (the status board) turns them into wall-clock
times with its own clock. None of these is an inbox message; they travel in ``Reply`` lines.
"""

from __future__ import annotations

from ._base import message

__all__ = [
    "OUTCOMES",
    "RELEASED",
    "AttemptRecord",
    "IdentifierHistory",
    "SyncHistoryReport",
    "UrlRecord",
]

#: What one request did (S18.1): brought every needed object it was asked for, brought some
#: (the server lacked the rest), or brought nothing.
RELEASED = "released"
OUTCOMES = (RELEASED, "partial", "failed")


@message
class AttemptRecord:
    """One request to one URL: where (``queue`` None = the main path, else the domain whose
    round-robin queue made it), how it ended, what it brought and how long it took."""

    url: str
    queue: str | None
    outcome: str
    reason: str | None = None
    detail: str = ""
    fetched: int = 0
    missing: int = 0
    released: int = 0
    pack_bytes: int | None = None
    seconds: float | None = None
    ago: float | None = None


@message
class UrlRecord:
    """The latest word on one URL of an identifier: how often it was asked, how it last
    answered, and whether it is ``permanent``-ly refused (policy, S18.2: never tried again)."""

    url: str
    attempts: int
    outcome: str
    reason: str | None = None
    detail: str = ""
    missing: int = 0
    ago: float | None = None
    permanent: bool = False


@message
class IdentifierHistory:
    """Why an identifier is (or was) held: its queue entry and its last attempts, newest first.

    ``state`` is ``queued`` (waiting for ``next_attempt_in`` seconds), ``syncing`` (a sync is
    running) or ``done`` (no longer queued: its last sync completed). ``attempt_count`` is the
    queue's count of incomplete syncs since the last new event (the backoff step, S4.1);
    ``requests`` counts every request ever recorded for it, beyond the kept ``attempts``.
    """

    identifier: str
    state: str
    attempt_count: int = 0
    next_attempt_in: float | None = None
    requests: int = 0
    attempts: tuple[AttemptRecord, ...] = ()
    urls: tuple[UrlRecord, ...] = ()


@message
class SyncHistoryReport:
    """Reply to ``GetSyncHistory``: up to its ``limit`` identifiers, of ``total`` known."""

    identifiers: tuple[IdentifierHistory, ...] = ()
    total: int = 0
