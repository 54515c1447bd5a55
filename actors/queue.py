"""The sync queue: one entry per repository identifier, debounced, with backoff (S4).

Pure policy: every method takes ``now`` (seconds from an injected clock). The Scheduler actor
is the only owner of a :class:`SyncQueue`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from dataclasses import dataclass

from .config import BACKOFF_BASE, BACKOFF_CAP

logger = logging.getLogger(__name__)

__all__ = ["SyncQueue", "SyncQueueEntry"]


@dataclass(slots=True)
class SyncQueueEntry:
    """When to try an identifier next, how often it failed, and whether a sync is running (S4.1)."""

    next_attempt: float
    attempt_count: int = 0
    in_progress: bool = False
    renewed: bool = False  # a new event arrived while a sync was running
    handed_over: bool = False  # the last sync left it to domain queues (see SyncQueue.hand_over)

    @classmethod
    def new(cls, delay: float, now: float) -> SyncQueueEntry:
        return cls(next_attempt=now + delay)

    def backoff(self) -> float:
        """20 s × 2^min(max(n−1, 0), 3), capped at 120 s: 20, 40, 80, 120, 120 … (S4.1)."""
        exponent = min(max(self.attempt_count - 1, 0), 3)
        return min(BACKOFF_BASE * 2**exponent, BACKOFF_CAP)

    def is_ready(self, now: float) -> bool:
        return not self.in_progress and now >= self.next_attempt

    def on_new_event(self, delay: float, now: float) -> None:
        """A new event resets the failure count and can only bring the next attempt closer.

        During a running sync the attempt that started it is used up, so the event schedules
        the follow-up at ``now + delay`` (the sooner of several) and marks the entry renewed.
        """
        self.attempt_count = 0
        self.handed_over = False
        if self.in_progress and not self.renewed:
            self.next_attempt = now + delay
        else:
            self.next_attempt = min(self.next_attempt, now + delay)
        self.renewed = self.in_progress

    def on_sync_complete(self, now: float, scale: float = 1.0) -> None:
        """An incomplete sync ended: back off, unless a new event already scheduled a sooner try.

        ``scale`` shrinks the backoff for tests and benchmarks only (``--sync-backoff-scale``).
        """
        self.in_progress = False
        if self.next_attempt <= now:
            self.attempt_count += 1
            self.next_attempt = now + self.backoff() * scale


class SyncQueue:
    """Identifier → :class:`SyncQueueEntry`, with a heap so a scan costs O(ready · log n) (S4.4).

    The heap holds ``(next_attempt, seq, identifier)`` records and is invalidated lazily: a
    record counts only while its identifier is queued, not in progress, and still has that
    exact ``next_attempt``. Stale records are dropped when they surface and the heap is
    rebuilt when they outnumber live entries, so memory stays proportional to the queue.
    """

    def __init__(self, backoff_scale: float) -> None:
        self.backoff_scale = backoff_scale
        self._entries: dict[str, SyncQueueEntry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, identifier: object) -> bool:
        return identifier in self._entries

    def get(self, identifier: str) -> SyncQueueEntry | None:
        return self._entries.get(identifier)

    def identifiers(self) -> list[str]:
        return list(self._entries)

    def next_attempts(self) -> dict[str, float]:
        """Identifier -> next attempt of every entry (status asks, S18.1)."""
        return {identifier: e.next_attempt for identifier, e in self._entries.items()}

    def enqueue(self, identifier: str, delay: float, now: float) -> SyncQueueEntry:
        """Add or debounce (S4.3): an existing entry keeps one slot and the sooner attempt."""
        entry = self._entries.get(identifier)
        if entry is None:
            entry = self._entries[identifier] = SyncQueueEntry.new(delay, now)
            logger.debug("queued %s in %.3f s", identifier, delay)
        else:
            entry.on_new_event(delay, now)
            logger.debug(
                "debounced %s: next attempt in %.3f s", identifier, entry.next_attempt - now
            )
        self._push(identifier, entry)
        return entry

    def pop_ready(self, now: float, limit: int | None = None) -> list[str]:
        """Mark up to ``limit`` ready entries in progress and return them, earliest first."""
        ready: list[str] = []
        while self._heap and (limit is None or len(ready) < limit):
            when, _, identifier = self._heap[0]
            if when > now:
                break
            heapq.heappop(self._heap)
            entry = self._entries.get(identifier)
            if entry is None or entry.in_progress or entry.next_attempt != when:
                continue
            entry.in_progress = True
            entry.renewed = entry.handed_over = False
            ready.append(identifier)
        return ready

    def finish(self, identifier: str, complete: bool, now: float) -> None:
        """S4.5: a complete sync drops the entry; an incomplete one backs off.

        An entry renewed by an event that arrived during the sync is kept either way, with the
        new event's time (the original removed it and lost that event's sync).
        """
        entry = self._entries.get(identifier)
        if entry is None:
            return
        if entry.renewed:
            entry.in_progress = entry.renewed = False  # the new event's follow-up stands
        elif complete:
            del self._entries[identifier]
            return
        else:
            entry.on_sync_complete(now, self.backoff_scale)
        logger.debug(
            "%s incomplete: attempt %d, retry in %.1f s",
            identifier,
            entry.attempt_count,
            entry.next_attempt - now,
        )
        self._push(identifier, entry)

    def hand_over(self, identifier: str, now: float, hold: float) -> None:
        """The sync left the identifier to its domains' round-robin queues (S5.3: every URL
        not tried was throttled), which fetch it as their limits allow (S6.3). Deviation from
        S4.5's ``on_sync_complete``: the retry is a safety net (a queue lost with a restarted
        DomainThrottle, a queue that failed), so it waits ``hold`` (S4.1's cap, scaled)
        instead of the 20 s backoff, and the failure count stays (nothing failed).

        Why (measured, P2, 1,000 identifiers over 10 domains): the 700 identifiers left to the
        queues in the start-up burst came back after 20 s, every one refused again because its
        domain still queued it (``TryStart``), 700 FetchActors with their store reads in the
        second rate window, the busiest stretch of the run. A queue that fails or fetches only
        part hands the retry back to the backoff (:meth:`queue_fell_short`). A new event
        during the sync keeps its sooner follow-up, as in :meth:`finish`.
        """
        entry = self._entries.get(identifier)
        if entry is None:
            return
        if entry.renewed:
            entry.in_progress = entry.renewed = False
        else:
            entry.in_progress = False
            entry.handed_over = True
            entry.next_attempt = now + hold * self.backoff_scale
        self._push(identifier, entry)

    def queue_fell_short(self, identifier: str, now: float) -> None:
        """A domain queue's request for a handed-over identifier failed or brought only part
        (S18.1 ``FetchAttempted`` with a queue): the queue may drop it (S6.3: no untried URL
        left), so the retry goes back to S4.1's backoff, counted as a failed attempt."""
        entry = self._entries.get(identifier)
        if entry is None or entry.in_progress or not entry.handed_over:
            return
        entry.handed_over = False
        entry.attempt_count += 1
        sooner = now + entry.backoff() * self.backoff_scale
        if sooner < entry.next_attempt:
            entry.next_attempt = sooner
            self._push(identifier, entry)

    def defer(self, identifier: str, at: float) -> None:
        """The sync did not run (another node holds the lease, S19.2): try again at ``at``.

        Not a failed attempt: ``attempt_count`` stays, so no backoff grows; a new event that
        arrived meanwhile keeps its sooner follow-up.
        """
        entry = self._entries.get(identifier)
        if entry is None:
            return
        entry.next_attempt = min(entry.next_attempt, at) if entry.renewed else at
        entry.in_progress = entry.renewed = False
        self._push(identifier, entry)

    def next_wakeup(self) -> float | None:
        """The earliest ``next_attempt`` of an entry that is not in progress, or None."""
        while self._heap:
            when, _, identifier = self._heap[0]
            entry = self._entries.get(identifier)
            if entry is not None and not entry.in_progress and entry.next_attempt == when:
                return when
            heapq.heappop(self._heap)
        return None

    def upcoming(self, limit: int) -> list[tuple[str, float]]:
        """Up to ``limit`` (identifier, next_attempt) pairs of waiting entries, soonest first."""
        waiting = ((e.next_attempt, i) for i, e in self._entries.items() if not e.in_progress)
        return [(i, t) for t, i in heapq.nsmallest(limit, waiting)]

    def _push(self, identifier: str, entry: SyncQueueEntry) -> None:
        heapq.heappush(self._heap, (entry.next_attempt, next(self._seq), identifier))
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._compact()

    def _compact(self) -> None:
        self._heap = [
            (e.next_attempt, next(self._seq), i)
            for i, e in self._entries.items()
            if not e.in_progress
        ]
        heapq.heapify(self._heap)
