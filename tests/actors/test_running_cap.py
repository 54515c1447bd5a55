"""The Scheduler's running-sync cap through the real actors (issue 16; actors.concurrency).

Every fetch is held after its transfer (``with_ingest_gate``) so the syncs keep running while
the fake clock moves; the Scheduler is then exactly on time at each probe.
"""

import gevent.event

from actors.fakes import MockSyncContext
from tests.support.wait import wait_for

B = "https://b.example/r.git"


def _held_syncs(fake_clock, start_system, count, **config):
    gate = gevent.event.Event()
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([B]).with_ingest_gate(gate)
    for i in range(count):
        ctx.with_needed_oids([f"o{i}"], identifier=f"id{i}").url_provides(B, [f"o{i}"])
    h = start_system(
        ctx, clock=fake_clock, max_concurrent=50, max_per_minute=500, synced_delay=0.0, **config
    )
    for i in range(count):
        h.system.enqueue_sync(f"id{i}", "synced")
    return ctx, h, gate


def _running(h):
    return h.status().scheduler.in_progress  # an ask: after every message before it


def test_adaptive_cap_grows_while_the_scheduler_is_on_time_up_to_max_running(
    start_system, fake_clock
):
    """Room (no lag) while the cap binds: a quarter more per probe, never above the hard bound
    --sync-max-running."""
    ctx, h, gate = _held_syncs(
        fake_clock,
        start_system,
        12,
        adaptive_running=True,
        start_running_syncs=2,
        min_running_syncs=1,
        max_running_syncs=6,
    )
    wait_for(lambda: _running(h) == 2, message="the start cap of 2 syncs running")
    seen = []
    for _ in range(6):
        fake_clock.advance(0.1 + 1e-6)  # the probe's WakeUp, handled on time (1 µs late)
        seen.append(_running(h))
    assert seen == [3, 4, 5, 6, 6, 6]
    gate.set()
    wait_for(lambda: not ctx.pending_identifiers(), message="every identifier released")


def test_fixed_cap_is_the_default_and_does_not_move(start_system, fake_clock):
    """Without --sync-adaptive-running the cap is --sync-max-running, as before."""
    ctx, h, gate = _held_syncs(fake_clock, start_system, 6, max_running_syncs=2)
    wait_for(lambda: _running(h) == 2, message="two syncs running")
    for _ in range(5):
        fake_clock.advance(0.1)
        assert _running(h) == 2
    gate.set()
    wait_for(lambda: not ctx.pending_identifiers(), message="every identifier released")
