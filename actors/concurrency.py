"""How many main-path syncs the Scheduler runs at once (issue 16: "a global sync concurrency
that adapts to what the machine sustains").

Pure policy, clock-injected: the Scheduler hands it ``now`` and how many syncs run; it owns no
timer and does no I/O. Two shapes with one interface:

* :class:`FixedCap` — ``--sync-max-running`` as a constant (the default, as before);
* :class:`AdaptiveCap` — ``--sync-adaptive-running``: the cap moves between a floor and
  ``--sync-max-running`` (the hard upper bound) by the Scheduler's own lateness, measured with
  a probe: while syncs run, the Scheduler asks for a wake-up every ``period``, and how late it
  gets to handle anything after that instant is the hub's lag (its timers, its run queue, and
  the CPU the machine gives the relay process). Little lag while the cap binds: the machine
  has room, so more syncs at once (fetches waiting for remote round trips). Much lag: the
  machine is saturated, and more syncs at once only lengthen each one (the domain slots they
  hold, S6) without finishing more per second (P6: 8, 16 and 32 running gave the same
  identifiers/s on 2 cores).

Both steps are multiplicative (a quarter of the cap, at least one), so the cap reaches 4x in
about six probes (0.6 s at the default period): the start-up burst of a restart, where every
identifier is ready at once (P2), lasts a few seconds.
"""

from __future__ import annotations

from typing import Protocol

__all__ = [
    "AdaptiveCap",
    "FixedCap",
    "RunningCap",
    "LAG_GROW",
    "LAG_SHRINK",
    "PROBE_PERIOD",
]

#: The probe's period while syncs run: one WakeUp to the Scheduler per period (10 per second).
PROBE_PERIOD = 0.1
#: Lateness under which the cap may grow (the Tick's lateness on a relay with room: 1-15 ms,
#: issue 16 fourth-session trace), and over which it shrinks (the same trace's Tick was
#: 14-115 ms late in the start-up burst of 16 syncs on a saturated 2-core machine).
LAG_GROW = 0.02
LAG_SHRINK = 0.06


class RunningCap(Protocol):
    """What the Scheduler's ``_pump`` asks: the cap now, and when to look again."""

    def limit(self, now: float, woken: bool = False) -> int:
        """How many syncs may run at ``now``; ``woken``: the WakeUp timer's own pump, which
        takes the probe's measurement when due."""
        ...

    def next_probe(self, now: float, running: int) -> float | None:
        """When the Scheduler must pump again to measure (None: no probe needed)."""
        ...


class FixedCap:
    """``--sync-max-running`` as it always was: a constant, no probe."""

    def __init__(self, ceiling: int) -> None:
        if ceiling < 1:
            raise ValueError("the running-sync cap must be at least 1")
        self.ceiling = ceiling

    def limit(self, now: float, woken: bool = False) -> int:
        return self.ceiling

    def next_probe(self, now: float, running: int) -> float | None:
        return None


class AdaptiveCap:
    """The cap between ``floor`` and ``ceiling``, moved by the Scheduler's lateness.

    ``next_probe`` arms a probe instant while syncs run; the WakeUp timer's pump at or after it
    measures ``now - due``: the timer's lateness plus the WakeUp's wait in the inbox. The first
    pump of *any* message after the instant would under-read it: a busy Scheduler handles some
    message right after any instant, however long that message had waited (with 400 ms
    servers that first version held slots 1.25-1.27x the server's time, this one 1.13x, one
    run each side: politeness.py). The cap grows only if it bound (as many syncs ran as it
    allowed) at some pump of that period: room that no sync asked for proves nothing.
    """

    def __init__(
        self,
        start: int,
        floor: int,
        ceiling: int,
        *,
        period: float = PROBE_PERIOD,
        grow_below: float = LAG_GROW,
        shrink_above: float = LAG_SHRINK,
    ) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError("the running-sync cap needs 1 <= floor <= ceiling")
        if period <= 0 or not 0 <= grow_below <= shrink_above:
            raise ValueError("the probe needs a positive period and grow <= shrink bounds")
        self.floor, self.ceiling = floor, ceiling
        self.cap = min(max(start, floor), ceiling)
        self.period, self.grow_below, self.shrink_above = period, grow_below, shrink_above
        self._due: float | None = None
        self._binding = False  # the cap was reached at a pump since the probe was armed
        self.last_lag: float | None = None

    def limit(self, now: float, woken: bool = False) -> int:
        due = self._due
        if woken and due is not None and now >= due:
            self._due = None
            self._adjust(now - due)
        return self.cap

    def next_probe(self, now: float, running: int) -> float | None:
        if running == 0:  # idle: nothing the lag could be blamed on; keep the cap
            self._due = None
            return None
        if self._due is None:
            self._due, self._binding = now + self.period, False
        self._binding = self._binding or running >= self.cap  # at any pump of the period
        return self._due

    def _adjust(self, lag: float) -> None:
        self.last_lag = lag
        step = max(1, self.cap // 4)
        if lag > self.shrink_above:
            self.cap = max(self.floor, self.cap - step)
        elif lag < self.grow_below and self._binding:
            self.cap = min(self.ceiling, self.cap + step)
