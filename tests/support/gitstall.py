"""Measuring gevent hub stalls (S7.4): a ticker greenlet that records its worst lateness.

    with HubTicker() as ticker:
        do_git_work()
    assert ticker.worst < 0.1

The ticker asks to wake up every ``interval`` seconds; any extra delay means some code held the
hub (ran without yielding) for that long.  This is the same probe python-ecosystem.md §2g used.
"""

from __future__ import annotations

import time

import gevent


class HubTicker:
    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.worst = 0.0
        self.ticks = 0
        self._greenlet: gevent.Greenlet | None = None
        self._last = time.monotonic()

    def _run(self) -> None:
        self._last = time.monotonic()
        while True:
            gevent.sleep(self.interval)
            now = time.monotonic()
            self.worst = max(self.worst, now - self._last - self.interval)
            self.ticks += 1
            self._last = now

    def __enter__(self) -> HubTicker:
        self._greenlet = gevent.spawn(self._run)
        gevent.sleep(0)  # let it take its first timestamp
        return self

    def __exit__(self, *exc: object) -> None:
        # A stall that lasts until the end of the block never lets the ticker wake up to see
        # it, so the tick that is overdue right now counts too.
        self.worst = max(self.worst, time.monotonic() - self._last - self.interval)
        assert self._greenlet is not None
        self._greenlet.kill()
