"""Per-domain politeness: concurrency, a sliding rate window and a round-robin queue (S6).

:class:`DomainThrottleState` is the pure policy one DomainThrottle actor owns.
:class:`ThrottleManager` is the seed's plain, single-owner manager over many domains; the unit
tests and benchmarks drive the sync functions with it, while inside the actor system a router
that messages DomainThrottle actors plays the same role (``actors.domain.ThrottleRouter``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .clock import Clock
from .config import SyncConfig

logger = logging.getLogger(__name__)

__all__ = ["DomainThrottleState", "ThrottleManager"]


@dataclass(slots=True)
class _QueuedIdentifier:
    tried_urls: set[str] = field(default_factory=set)
    in_progress: bool = False


class DomainThrottleState:
    """One domain's limits and round-robin queue. Every time-dependent method takes ``now``."""

    def __init__(
        self, domain: str, max_concurrent: int, max_per_minute: int, window: float
    ) -> None:
        if max_concurrent < 1 or max_per_minute < 1 or window <= 0:
            raise ValueError("throttle limits must be positive")
        self.domain = domain
        self.max_concurrent = max_concurrent
        self.max_per_minute = max_per_minute
        self.window = window
        self.in_flight = 0
        self.request_times: deque[float] = deque()
        self._queue: dict[str, _QueuedIdentifier] = {}
        self._order: list[str] = []
        self.round_robin_index = 0
        self._reserved: set[str] = set()  # identifiers dispatched with a slot not yet returned

    @classmethod
    def from_config(cls, domain: str, config: SyncConfig) -> DomainThrottleState:
        """The state of ``domain`` under the limits of ``config`` (S6.1)."""
        return cls(domain, config.max_concurrent, config.max_per_minute, config.rate_window)

    # -- limits (S6.1, S6.4) ------------------------------------------------------------
    #
    # The window counts a request from its start until ``window`` seconds after it *ended*:
    # in-flight requests always count, finished ones by their completion time. A remote sees a
    # request somewhere between our start and our end, so only this accounting keeps the limit
    # as the remote observes it (measured: stamping the start let servers see 33-34 requests in
    # a 30-per-window limit, because requests reach them up to 0.4 s after the slot was taken).
    # Stricter than S6.1's start-time count, never looser (deviation, docs/architecture.rst).

    def window_used(self, now: float) -> int:
        self._prune(now)
        return self.in_flight + len(self.request_times)

    def has_capacity(self, now: float) -> bool:
        return self.in_flight < self.max_concurrent and self.window_used(now) < self.max_per_minute

    def start_request(self, now: float) -> None:
        """Count a request as started (unconditional, as in the seed; see :meth:`try_start`)."""
        self.in_flight += 1

    def try_start(self, now: float) -> bool:
        """Check capacity and start in one step, so no race can overshoot a limit (S6.4)."""
        if not self.has_capacity(now):
            return False
        self.start_request(now)
        return True

    def complete_request(self, now: float) -> None:
        """The request ended: it stays in the window until ``window`` after ``now``."""
        if self.in_flight > 0:
            self.in_flight -= 1
            self.request_times.append(now)
        self._prune(now)

    def cancel_request(self) -> None:
        """Undo a slot that never became a request (the throttle path found no URL)."""
        self.in_flight = max(0, self.in_flight - 1)

    def window_frees_at(self, now: float) -> float | None:
        """When the oldest finished request leaves a full window; None when the window is not
        full or only in-flight requests fill it (their completion is the trigger then)."""
        if self.window_used(now) < self.max_per_minute or not self.request_times:
            return None
        return self.request_times[0] + self.window

    def _prune(self, now: float) -> None:
        times = self.request_times
        while times and now - times[0] >= self.window:
            times.popleft()

    # -- round-robin queue (S6.2) ---------------------------------------------------------

    def enqueue_identifier(self, identifier: str, tried_urls: Iterable[str] = ()) -> None:
        entry = self._queue.get(identifier)
        if entry is None:
            self._queue[identifier] = _QueuedIdentifier(set(tried_urls))
            self._order.append(identifier)
        else:
            entry.tried_urls.update(tried_urls)

    def next_ready_identifier(self) -> str | None:
        """The next identifier after the round-robin index that is not in progress."""
        count = len(self._order)
        for step in range(count):
            index = (self.round_robin_index + step) % count
            identifier = self._order[index]
            entry = self._queue[identifier]
            if not entry.in_progress:
                entry.in_progress = True
                self.round_robin_index = (index + 1) % count
                return identifier
        return None

    def mark_identifier_not_in_progress(self, identifier: str) -> None:
        entry = self._queue.get(identifier)
        if entry is not None:
            entry.in_progress = False

    def mark_url_tried(self, identifier: str, url: str) -> None:
        entry = self._queue.get(identifier)
        if entry is not None:
            entry.tried_urls.add(url)

    def get_tried_urls(self, identifier: str) -> frozenset[str]:
        entry = self._queue.get(identifier)
        return frozenset(entry.tried_urls) if entry else frozenset()

    def remove_identifier(self, identifier: str) -> None:
        """Remove keeping the index on the same next element (S6.2)."""
        if self._queue.pop(identifier, None) is None:
            return
        index = self._order.index(identifier)
        del self._order[index]
        if index < self.round_robin_index:
            self.round_robin_index -= 1
        self.round_robin_index = self.round_robin_index % len(self._order) if self._order else 0

    def has_queued_identifier(self, identifier: str) -> bool:
        return identifier in self._queue

    def has_queued_work(self) -> bool:
        return any(not e.in_progress for e in self._queue.values())

    @property
    def queued(self) -> int:
        return len(self._order)

    def queued_identifiers(self) -> list[str]:
        return list(self._order)

    # -- trigger-driven dispatch (S6.3) ---------------------------------------------------

    def dispatch_ready(
        self, now: float, limit: int | None = None
    ) -> list[tuple[str, frozenset[str]]]:
        """Start as many queued identifiers as capacity allows (the original starts one), at
        most ``limit`` (the DomainThrottle starts one per slot the cluster's ledger granted).

        Each returned ``(identifier, tried_urls)`` holds a reserved request slot. The fetch
        gives it back with :meth:`release_slot` as soon as its request ended (before the
        release work that follows), and reports with :meth:`finish_queued`.
        """
        started: list[tuple[str, frozenset[str]]] = []
        while self.has_capacity(now) and (limit is None or len(started) < limit):
            identifier = self.next_ready_identifier()
            if identifier is None:
                break
            self.start_request(now)
            self._reserved.add(identifier)
            started.append((identifier, self.get_tried_urls(identifier)))
        return started

    def release_slot(self, identifier: str, now: float, contacted: bool = True) -> None:
        """The request made with ``identifier``'s reserved slot ended (S5.2 order: the slot is
        free before the release work starts). ``contacted`` False: nothing reached the remote
        (the fetch policy refused the URL), so the slot leaves no window entry."""
        if identifier in self._reserved:
            self._reserved.discard(identifier)
            if contacted:
                self.complete_request(now)
            else:
                self.cancel_request()

    def finish_queued(self, identifier: str, url: str | None, now: float) -> None:
        """A throttle-path unit of work ended; ``url`` None means no untried URL was left.

        A slot still reserved here never carried a request: it is returned without a window
        entry. ``in_progress`` is cleared *before* the caller picks the next identifier (the
        original triggered first and stalled on a lone identifier).
        """
        if identifier in self._reserved:
            self._reserved.discard(identifier)
            self.cancel_request()
        if url is None:
            self.remove_identifier(identifier)
            return
        self.mark_url_tried(identifier, url)
        self.mark_identifier_not_in_progress(identifier)

    def wake_at(self, now: float) -> float | None:
        """When a timer must fire: queued work waits and only the rate window blocks it."""
        if not self.has_queued_work() or self.in_flight >= self.max_concurrent:
            return None
        return self.window_frees_at(now)


class ThrottleManager:
    """The seed's manager: domain → :class:`DomainThrottleState`, created lazily (S6).

    Single owner, no triggering: enqueued identifiers just wait, which is what the seed's unit
    tests expect ("enqueued but not triggered"). The actor system drives dispatch instead.
    """

    def __init__(
        self, max_concurrent: int, max_per_minute: int, window: float, clock: Clock
    ) -> None:
        self.max_concurrent = max_concurrent
        self.max_per_minute = max_per_minute
        self.window = window
        self.clock = clock
        self.throttles: dict[str, DomainThrottleState] = {}

    @classmethod
    def from_config(cls, config: SyncConfig, clock: Clock) -> ThrottleManager:
        """The manager with the limits of ``config`` (S6.1)."""
        return cls(config.max_concurrent, config.max_per_minute, config.rate_window, clock)

    def throttle(self, domain: str) -> DomainThrottleState:
        state = self.throttles.get(domain)
        if state is None:
            state = self.throttles[domain] = DomainThrottleState(
                domain, self.max_concurrent, self.max_per_minute, self.window
            )
        return state

    def is_throttled(self, domain: str) -> bool:
        """True when the domain exists and has no capacity; unknown domains never are."""
        state = self.throttles.get(domain)
        return state is not None and not state.has_capacity(self.clock.now())

    def start_request(self, domain: str) -> bool:
        """Atomic check-and-start (S6.4); False when the domain is saturated."""
        return self.throttle(domain).try_start(self.clock.now())

    def transfer_ended(self, domain: str, url: str) -> None:
        """The request's last byte arrived: its slot is free now (before indexing)."""
        self.throttle(domain).complete_request(self.clock.now())

    def complete_request(
        self, domain: str, url: str | None = None, reason: str | None = None, freed: bool = False
    ) -> None:
        """The request ended; ``url`` and ``reason`` are for traces, which this has none of.
        ``freed``: :meth:`transfer_ended` gave its slot back already."""
        if not freed:
            self.throttle(domain).complete_request(self.clock.now())

    def enqueue_identifier(self, domain: str, identifier: str, tried_urls: Iterable[str]) -> None:
        self.throttle(domain).enqueue_identifier(identifier, tried_urls)

    def has_queued_identifier(self, domain: str, identifier: str) -> bool:
        state = self.throttles.get(domain)
        return state is not None and state.has_queued_identifier(identifier)
