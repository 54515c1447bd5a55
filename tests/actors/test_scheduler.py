"""The Scheduler actor under a FakeClock, and its precise wake-up under the gevent clock (S4)."""

import time

from actors.fakes import MockSyncContext
from tests.support.wait import wait_for

A = "https://a.example/r.git"
B = "https://b.example/r.git"


def _ctx(clock=time.monotonic, **needed):
    ctx = MockSyncContext(clock=clock).with_urls([A])
    for identifier, oids in needed.items():
        ctx.with_needed_oids(oids, identifier=identifier)
        ctx.url_provides(A, oids)
    return ctx


def test_enqueued_identifier_is_synced_at_its_time_and_removed(start_system, fake_clock):
    """S4.2/S4.5: nothing happens before the delay; then one sync releases and drops the entry."""
    ctx = _ctx(fake_clock.now, repo=["o1"])
    h = start_system(ctx, clock=fake_clock)
    h.enqueue("repo")  # the synced delay, 0.5 s
    h.advance(0.4)
    assert ctx.fetch_log == [] and h.status().queue_size == 1
    h.advance(0.1)
    assert ctx.fetch_log == [(A, ("o1",))]
    assert ctx.released == {"repo"} and h.status().queue_size == 0


def test_incomplete_sync_backs_off_20_40_80_seconds(start_system, fake_clock):
    """S4.1: attempts at t, t+20, t+60, t+140 while the remote keeps failing."""
    ctx = _ctx(fake_clock.now, repo=["o1"]).url_fails(A)
    h = start_system(ctx, clock=fake_clock, synced_delay=0.0)
    t0 = fake_clock.now()
    h.enqueue("repo")
    for _ in range(200):  # one-second steps: every periodic Tick is delivered too
        if len(ctx.fetch_log) == 4:
            break
        h.advance(1.0)
    starts = [round(t - t0, 3) for t in ctx.request_starts["a.example"]]
    assert starts == [0.0, 20.0, 60.0, 140.0]
    status = h.status().scheduler
    assert status.queue_size == 1 and status.next_attempts == (("repo", 120.0),)


def test_new_event_during_backoff_resets_and_pulls_the_attempt_forward(start_system, fake_clock):
    ctx = _ctx(fake_clock.now, repo=["o1"]).url_fails(A)
    h = start_system(ctx, clock=fake_clock, user_delay=0.0, synced_delay=0.5)
    h.enqueue("repo", "user")
    assert len(ctx.fetch_log) == 1
    h.advance(5)
    h.enqueue("repo", "synced")  # S4.3: debounced into the same entry
    h.advance(0.5)
    assert len(ctx.fetch_log) == 2
    assert h.status().scheduler.next_attempts == (("repo", 20.0),)


def test_running_syncs_are_capped_and_the_rest_start_as_slots_free(start_system, fake_clock):
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([A, B]).with_fetch_delay(0.02)
    for i in range(6):
        ctx.with_needed_oids([f"o{i}"], identifier=f"id{i}").url_provides(B, [f"o{i}"])
    h = start_system(
        ctx, clock=fake_clock, max_running_syncs=2, max_concurrent=10, synced_delay=0.0
    )
    for i in range(6):
        h.system.enqueue_sync(f"id{i}", "synced")
    wait_for(lambda: h.status().scheduler.in_progress == 2, message="two syncs running")
    assert h.status().scheduler.in_progress <= 2
    wait_for(lambda: not ctx.pending_identifiers(), message="every identifier released")


def test_ready_entry_starts_within_50ms_not_on_the_next_tick(start_system):
    """S4.4 (beyond the original's 1 s polling): a precise wake-up at next_attempt."""
    ctx = _ctx(repo=["o1"])
    h = start_system(ctx, tick_interval=30.0, synced_delay=0.2)
    enqueued = time.monotonic()
    h.system.enqueue_sync("repo", "synced")
    wait_for(lambda: ctx.fetch_log, timeout=5, message="the first fetch")
    late = ctx.request_starts["a.example"][0] - (enqueued + 0.2)
    assert 0 <= late < 0.05, f"started {late * 1000:.1f} ms after its time"


def test_tick_only_mode_waits_for_the_periodic_tick(start_system, fake_clock):
    """With precise wake-ups off (the benchmark baseline) the 1 s Tick is what starts syncs."""
    ctx = _ctx(fake_clock.now, repo=["o1"])
    h = start_system(ctx, clock=fake_clock, precise_wakeups=False, synced_delay=0.2)
    h.enqueue("repo")
    h.advance(0.5)
    assert ctx.fetch_log == []
    h.advance(0.5)
    assert len(ctx.fetch_log) == 1


def _one_slot_a_minute(fake_clock, start_system, y_fails=False, y_release_fails=False):
    """x and y share a.example, which allows one request per 60 s: x takes it, y's TryStart is
    refused and y is left to a.example's queue (S5.3), which fetches it once the window frees."""
    ctx = MockSyncContext(clock=fake_clock.now)
    for name in ("x", "y"):
        url = f"https://a.example/{name}.git"
        ctx.with_urls([url], identifier=name).with_needed_oids([f"{name}1"], identifier=name)
        ctx.url_provides(url, [f"{name}1"])
    if y_fails:
        ctx.url_fails("https://a.example/y.git")
    if y_release_fails:
        ctx.release_fails("y", times=2)  # the queue's pass after its fetch, and the retry's
    h = start_system(ctx, clock=fake_clock, max_per_minute=1, synced_delay=0.0)
    h.enqueue("x")
    h.enqueue("y")
    return ctx, h


def test_a_sync_left_to_a_domain_queue_is_not_retried_after_20s(start_system, fake_clock):
    """S5.3/S6.3: the queue owns y; the Scheduler's retry is a safety net after 120 s (S4.1's
    cap), not S4.5's 20 s backoff, which only found y still queued and was refused again."""
    ctx, h = _one_slot_a_minute(fake_clock, start_system)
    assert ctx.fetch_log == [("https://a.example/x.git", ("x1",))]
    assert h.status().scheduler.next_attempts == (("y", 120.0),)
    for _ in range(61):
        h.advance(1.0)
    assert ctx.fetch_log[1:] == [("https://a.example/y.git", ("y1",))]  # by the queue
    assert ctx.released == {"x", "y"}
    for _ in range(60):
        h.advance(1.0)
    assert h.status().scheduler.queue_size == 0  # the safety net found nothing pending
    assert len(ctx.fetch_log) == 2


def test_a_domain_queue_that_fails_hands_the_retry_back_to_the_backoff(start_system, fake_clock):
    """The queue's request for y failed: the queue drops y (S6.3, no untried URL left), so the
    Scheduler retries it 20 s later (S4.1, attempt 1) instead of waiting out the 120 s."""
    ctx, h = _one_slot_a_minute(fake_clock, start_system, y_fails=True)
    for _ in range(61):
        h.advance(1.0)
        if len(ctx.fetch_log) == 2:
            break
    assert ctx.fetch_log[1][0] == "https://a.example/y.git"  # the queue's failed request
    assert h.status().scheduler.next_attempts == (("y", 20.0),)


def test_a_release_that_fails_after_a_fetch_is_retried_with_the_backoff(start_system, fake_clock):
    """S5.3 (deviation) with S4.1: everything arrived but the release failed, so the sync is
    incomplete (``release_failed``) and is tried again 20 s later; that pass releases it. It used
    to be reported complete and dropped, and the event stayed held."""
    ctx = _ctx(fake_clock.now, repo=["o1"]).release_fails("repo", times=4)
    h = start_system(ctx, clock=fake_clock, synced_delay=0.0)
    h.enqueue("repo")  # fetched; the pass after it and the one more both fail
    assert ctx.fetch_log == [(A, ("o1",))] and ctx.released == set()
    assert h.status().scheduler.next_attempts == (("repo", 20.0),)
    for _ in range(20):
        h.advance(1.0)
    assert ctx.released == set()  # the retry's first pass (a tell) failed, and the awaited one
    assert h.status().scheduler.next_attempts == (("repo", 40.0),)
    for _ in range(40):
        h.advance(1.0)
    assert ctx.released == {"repo"} and h.status().scheduler.queue_size == 0
    assert len(ctx.fetch_log) == 1  # nothing fetched again: the objects were present


def test_a_domain_queue_whose_release_fails_hands_the_retry_back_to_the_backoff(
    start_system, fake_clock
):
    """The queue's request brought y's objects but the release failed: the Scheduler retries y
    20 s later (S4.1), not after the hand-over's 120 s, and that retry releases it."""
    ctx, h = _one_slot_a_minute(fake_clock, start_system, y_release_fails=True)
    for _ in range(61):
        h.advance(1.0)
        if len(ctx.fetch_log) == 2:
            break
    assert ctx.fetch_log[1] == ("https://a.example/y.git", ("y1",))  # by the queue
    assert ctx.released == {"x"}
    assert h.status().scheduler.next_attempts == (("y", 20.0),)
    for _ in range(20):
        h.advance(1.0)
    assert ctx.released == {"x", "y"} and len(ctx.fetch_log) == 2
