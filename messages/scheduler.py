"""What the Scheduler's inbox accepts (ARCHITECTURE §3, SPEC S4)."""

from __future__ import annotations

from typing import Literal, get_args

from ._base import message

#: Why an identifier is queued: a user's event (a push is expected to follow), an event copied
#: from another relay, or a restart re-queueing what is held (S4.2). Only the sync config turns
#: a reason into a delay.
SyncReason = Literal["user", "synced", "restart"]
SYNC_REASONS: frozenset[str] = frozenset(get_args(SyncReason))


@message
class EnqueueSync:
    """An event for ``identifier`` entered purgatory for ``reason``; try a sync after the
    reason's delay (S4.2), debounced with any entry already queued (S4.3)."""

    identifier: str
    reason: SyncReason

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
    """A FetchActor finished one ``sync_identifier`` run (S4.5)."""

    identifier: str
    complete: bool


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


SchedulerMsg = EnqueueSync | Tick | WakeUp | SyncFinished | GetSchedulerStatus
