"""The running-sync cap (actors.concurrency): fixed by default, adaptive on request (issue 16).

The adaptive cap is pure and clock-injected: these tests hand it instants and counts.
"""

import pytest

from actors.concurrency import LAG_GROW, LAG_SHRINK, PROBE_PERIOD, AdaptiveCap, FixedCap
from actors.config import SyncConfig

T0 = 1000.0


def _probe(cap: AdaptiveCap, now: float, running: int, lag: float) -> int:
    """Arm a probe at ``now`` with ``running`` syncs, then pump ``lag`` after its due instant."""
    due = cap.next_probe(now, running)
    assert due == pytest.approx(now + PROBE_PERIOD)
    return cap.limit(due + lag, woken=True)


def test_the_default_is_the_fixed_cap_of_max_running_syncs_without_a_probe():
    """--sync-max-running as before: a constant, and no extra wake-up for the Scheduler."""
    cap = SyncConfig(max_running_syncs=16).running_cap()
    assert isinstance(cap, FixedCap)
    assert [cap.limit(T0 + t) for t in (0.0, 5.0, 500.0)] == [16, 16, 16]
    assert cap.next_probe(T0, 16) is None


def test_the_adaptive_cap_is_chosen_by_the_switch_and_starts_clipped_into_its_range():
    cap = SyncConfig(
        adaptive_running=True, max_running_syncs=10, min_running_syncs=4, start_running_syncs=16
    ).running_cap()
    assert isinstance(cap, AdaptiveCap) and cap.limit(T0) == 10  # start 16 > bound 10
    assert AdaptiveCap(start=1, floor=4, ceiling=10).limit(T0) == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": 4, "floor": 0, "ceiling": 8},
        {"start": 4, "floor": 9, "ceiling": 8},
        {"start": 4, "floor": 1, "ceiling": 8, "period": 0.0},
        {"start": 4, "floor": 1, "ceiling": 8, "grow_below": 0.1, "shrink_above": 0.05},
    ],
)
def test_bad_bounds_are_refused(kwargs):
    with pytest.raises(ValueError):
        AdaptiveCap(**kwargs)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="min_running_syncs"):
        SyncConfig(adaptive_running=True, max_running_syncs=4, min_running_syncs=5)
    with pytest.raises(ValueError, match="at least 1"):
        SyncConfig(min_running_syncs=0)
    with pytest.raises(ValueError):
        FixedCap(0)


def test_it_grows_by_a_quarter_while_the_scheduler_is_on_time_and_the_cap_binds():
    cap = AdaptiveCap(start=16, floor=4, ceiling=64)
    now, seen = T0, []
    for _ in range(10):
        seen.append(_probe(cap, now, running=cap.limit(now), lag=0.001))
        now += PROBE_PERIOD
    assert seen == [20, 25, 31, 38, 47, 58, 64, 64, 64, 64]  # the hard bound holds


def test_it_does_not_grow_on_room_that_no_sync_asked_for():
    cap = AdaptiveCap(start=16, floor=4, ceiling=64)
    assert _probe(cap, T0, running=3, lag=0.0) == 16


def test_it_shrinks_by_a_quarter_when_the_scheduler_is_late_down_to_the_floor():
    cap = AdaptiveCap(start=16, floor=6, ceiling=64)
    now, seen = T0, []
    for _ in range(6):
        seen.append(_probe(cap, now, running=2, lag=LAG_SHRINK + 0.01))
        now += 1.0
    assert seen == [12, 9, 7, 6, 6, 6]
    assert cap.last_lag == pytest.approx(LAG_SHRINK + 0.01)


def test_the_cap_counts_as_binding_if_any_pump_of_the_period_reached_it():
    cap = AdaptiveCap(start=4, floor=1, ceiling=64)
    due = cap.next_probe(T0, 1)  # armed with one sync running
    assert due is not None and cap.next_probe(T0 + 0.05, 4) == due  # then the cap was reached
    assert cap.limit(due, woken=True) == 5


def test_lag_between_the_bounds_holds_the_cap():
    cap = AdaptiveCap(start=16, floor=4, ceiling=64)
    assert _probe(cap, T0, running=16, lag=(LAG_GROW + LAG_SHRINK) / 2) == 16


def test_a_pump_before_the_probe_is_due_measures_nothing():
    cap = AdaptiveCap(start=16, floor=4, ceiling=64)
    due = cap.next_probe(T0, 16)
    assert due is not None
    assert cap.limit(due - 0.01, woken=True) == 16 and cap.last_lag is None
    assert cap.next_probe(due - 0.01, 16) == due  # the armed probe stays
    assert cap.limit(due + 1.0) == 16  # another message's pump measures nothing
    assert cap.limit(due + 1.0, woken=True) == 12  # the WakeUp's: measured once, late
    assert cap.limit(due + 2.0, woken=True) == 12  # not again without a new probe


def test_no_probe_while_idle_and_the_cap_is_kept():
    cap = AdaptiveCap(start=16, floor=4, ceiling=64)
    assert cap.next_probe(T0, 16) is not None
    assert cap.next_probe(T0 + 0.05, 0) is None  # the last sync ended: the probe is dropped
    assert cap.limit(T0 + 10.0, woken=True) == 16 and cap.last_lag is None
