"""What the Scheduler's inbox accepts (ARCHITECTURE §3, SPEC S4)."""

from __future__ import annotations

from ._base import message


@message
class EnqueueSync:
    """An event for ``identifier`` entered purgatory; try a sync in ``delay`` seconds (S4.2, S4.3)."""

    identifier: str
    delay: float


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
    """Reply to :class:`GetSchedulerStatus`; ``next_attempts`` holds (identifier, seconds from now)."""

    queue_size: int
    in_progress: int
    next_attempts: tuple[tuple[str, float], ...] = ()


SchedulerMsg = EnqueueSync | Tick | WakeUp | SyncFinished | GetSchedulerStatus
