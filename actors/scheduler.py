"""The Scheduler: owner of the sync queue, starter of main-path FetchActors (S4).

MUST: keep one entry per identifier (S4.3); start a ready entry within a few ms of its
``next_attempt`` (precise wake-up, S4.4) and also scan on the periodic Tick; back off after an
incomplete sync (S4.1, S4.5).
MUST NOT: do I/O or ask anyone — it only tells, spawns and arms timers, so its behaviour is a
function of its inbox and the clock, and a trace of it replays exactly.

It also owns the sync history (S18, :mod:`actors.history`): FetchActors tell it every request
they made (``FetchAttempted``), it logs what the history says is news, hands each sync the URLs
the fetch policy refused for that identifier (never contacted again, S18.2) and answers
``GetSyncHistory`` with the history next to the queue entry.
"""

from __future__ import annotations

import logging

from messages.fetch import SyncIdentifier
from messages.history import RELEASED, SyncHistoryReport
from messages.scheduler import (
    THROTTLED,
    EnqueueSync,
    FetchAttempted,
    GetSchedulerStatus,
    GetSyncHistory,
    SchedulerStatus,
    SyncFinished,
    Tick,
    WakeUp,
)

from .base import BaseActor, handles
from .context import LEASED
from .effects import Binder
from .history import SyncHistory, known, most_relevant
from .names import SCHEDULER
from .queue import SyncQueue
from .services import Services

logger = logging.getLogger(__name__)

__all__ = ["Scheduler"]


class Scheduler(BaseActor):
    def __init__(self, services: Services, bind: Binder) -> None:
        super().__init__(services, bind, SCHEDULER)
        config = services.config
        self.queue = SyncQueue(config.backoff_scale)
        self.history = SyncHistory(config.history_attempts, config.history_identifiers)
        self.running = 0
        self.cap = config.running_cap()

    def on_start(self) -> None:
        super().on_start()
        now = self.services.clock.now()
        self.effects.arm("tick", now + self.services.config.tick_interval, Tick())

    @handles(EnqueueSync)
    def on_enqueue(self, msg: EnqueueSync, now: float) -> None:
        if msg.if_absent and msg.identifier in self.queue:
            return
        self.queue.enqueue(msg.identifier, self.services.config.delay_for(msg.reason), now)
        self._pump(now)

    @handles(Tick)
    def on_tick(self, msg: Tick, now: float) -> None:
        self.effects.arm("tick", now + self.services.config.tick_interval, Tick())
        self._pump(now)

    @handles(WakeUp)
    def on_wake(self, msg: WakeUp, now: float) -> None:
        self._pump(now, woken=True)

    @handles(SyncFinished)
    def on_finished(self, msg: SyncFinished, now: float) -> None:
        if msg.attempt is not None:  # the sync's last request rides here (P4): recorded first
            self._record(msg.attempt, now)
        self.running = max(0, self.running - 1)
        if msg.reason == LEASED:  # S19.2: another node syncs it now; not a failure
            logger.debug("%s is leased by another node: retry in %.1f s", msg.identifier,
                         self.services.config.lease_retry)  # fmt: skip
            self.queue.defer(msg.identifier, now + self.services.config.lease_retry)
            self._pump(now)
            return
        if not msg.complete and msg.reason == THROTTLED:  # the queues own it: a safety net only
            self.queue.hand_over(msg.identifier, now, self.services.config.handover_retry)
        else:
            self.queue.finish(msg.identifier, msg.complete, now)
        self.services.observer.sync_finished(msg.identifier, msg.complete)
        if msg.complete:
            logger.info("sync of %s complete, removed from the queue", msg.identifier)
        self._pump(now)

    @handles(FetchAttempted)
    def on_attempted(self, msg: FetchAttempted, now: float) -> None:
        self._record(msg, now)
        if msg.queue is not None and (msg.outcome != RELEASED or msg.reason is not None):
            # A failed or partial request, or a failed release after it (RELEASE_FAILED):
            # the backoff's retry again, not the hand-over's safety net.
            self.queue.queue_fell_short(msg.identifier, now)
            self._pump(now)

    def _record(self, attempt: FetchAttempted, now: float) -> None:
        """S18.1's history, and its log line when the history says it is news (S18.2)."""
        notice = self.history.record(attempt, now)
        logger.log(notice.level, "%s", notice.text)

    @handles(GetSyncHistory)
    def on_history(self, msg: GetSyncHistory, now: float) -> SyncHistoryReport:
        queue, history = self.queue, self.history
        if msg.identifier is not None:
            present = msg.identifier in queue or msg.identifier in history
            report = history.report(msg.identifier, now, queue.get(msg.identifier))
            return SyncHistoryReport((report,) if present else (), int(present))
        upcoming = queue.next_attempts()
        chosen = most_relevant(upcoming, history, msg.limit)
        reports = tuple(history.report(i, now, queue.get(i)) for i in chosen)
        return SyncHistoryReport(reports, known(upcoming, history))

    @handles(GetSchedulerStatus)
    def on_status(self, msg: GetSchedulerStatus, now: float) -> SchedulerStatus:
        upcoming = tuple((i, round(t - now, 3)) for i, t in self.queue.upcoming(msg.limit))
        return SchedulerStatus(len(self.queue), self.running, upcoming)

    def _pump(self, now: float, woken: bool = False) -> None:
        """Start every ready entry that fits, then arm the wake-up for the next one
        (``woken``: this pump is the WakeUp timer's, whose lateness the adaptive cap reads)."""
        config, observer = self.services.config, self.services.observer
        cap = self.cap.limit(now, woken)  # fixed, or adaptive (actors.concurrency)
        for identifier in self.queue.pop_ready(now, limit=max(cap - self.running, 0)):
            self.running += 1
            observer.sync_attempt(identifier)
            refused = self.history.refused(identifier)
            self.effects.spawn_fetch(SyncIdentifier(identifier, refused))
        observer.queue_size(len(self.queue))
        wake = self.queue.next_wakeup() if config.precise_wakeups else None
        if wake is not None and self.running >= cap:
            wake = None  # a SyncFinished will pump again
        due = [t for t in (wake, self.cap.next_probe(now, self.running)) if t is not None]
        if due:  # the queue's next entry or the adaptive cap's probe, whichever comes first
            self.effects.arm("wake", max(min(due), now), WakeUp())
        else:
            self.effects.disarm("wake")
