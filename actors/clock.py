"""Time, injected: every policy decision takes ``now`` from a :class:`Clock`.

Production uses :class:`GeventClock` (monotonic seconds, timers on the gevent hub). Tests use
:class:`FakeClock`, which only moves when told to and fires due timers in order, so actor
behaviour under time is deterministic and replayable (S13.3).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger(__name__)

__all__ = ["Clock", "FakeClock", "GeventClock", "TimerHandle"]


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic seconds plus one-shot timers at an absolute time.

    Timers take the absolute ``due`` the policy computed, not a delay, so a fake clock fires
    them at exactly that instant and ``now >= due`` holds in the handler (no float drift).
    """

    def now(self) -> float: ...

    def call_at(self, due: float, callback: Callable[[], None]) -> TimerHandle: ...


class _GeventTimer:
    __slots__ = ("_greenlet",)

    def __init__(self, greenlet) -> None:
        self._greenlet = greenlet

    def cancel(self) -> None:
        self._greenlet.kill(block=False)


class GeventClock:
    """``time.monotonic`` and ``gevent.spawn_later``: the production clock."""

    def now(self) -> float:
        return time.monotonic()

    def call_at(self, due: float, callback: Callable[[], None]) -> TimerHandle:
        import gevent

        delay = max(0.0, due - time.monotonic())
        return _GeventTimer(gevent.spawn_later(delay, _guarded, callback))


def _guarded(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:
        logger.exception("timer callback %r failed", callback)


class _FakeTimer:
    __slots__ = ("cancelled", "due")

    def __init__(self, due: float) -> None:
        self.due = due
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only through :meth:`advance` (firing due timers) or :meth:`set`.

    ``set`` jumps without firing anything; trace replay uses it to place the clock exactly at
    each recorded delivery time while the recorded timer messages are fed in by hand.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self._timers: list[tuple[float, int, _FakeTimer, Callable[[], None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_at(self, due: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _FakeTimer(max(due, self._now))
        heapq.heappush(self._timers, (timer.due, next(self._seq), timer, callback))
        return timer

    def advance(self, seconds: float) -> int:
        """Move forward by ``seconds``, firing every timer due on the way in time order.

        Returns how many timers fired. A callback may arm new timers; those fire too when
        they fall inside the interval.
        """
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        target = round(self._now + seconds, 9)  # 1000.4 + 0.1 lands on 1000.5
        fired = 0
        while self._timers and self._timers[0][0] <= target:
            due, _, timer, callback = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, due)
            callback()
            fired += 1
        self._now = target
        return fired

    def set(self, t: float) -> None:
        """Jump to ``t`` without firing timers (replay only)."""
        if t < self._now:
            raise ValueError(f"a clock cannot go backwards ({t} < {self._now})")
        self._now = t

    @property
    def pending(self) -> int:
        return sum(1 for _, _, timer, _ in self._timers if not timer.cancelled)
