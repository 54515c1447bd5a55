"""DomainThrottle actors: atomic TryStart, trigger-driven dispatch, rate-window wake-ups (S6)."""

import gevent

from actors.fakes import MockSyncContext
from tests.support.wait import wait_for

D = "git.example"
URL1 = f"https://{D}/one.git"
URL2 = f"https://{D}/two.git"


def _enqueue(h, identifier, tried=()):
    h.client().enqueue_identifier(D, identifier, tried)
    h.settle()


def test_try_start_is_atomic_under_concurrent_asks(start_system):
    """S6.4: twenty simultaneous TryStarts on a limit of 3 grant exactly 3."""
    h = start_system(MockSyncContext(), max_concurrent=3, max_per_minute=100)
    client = h.client()
    jobs = [gevent.spawn(client.start_request, D) for _ in range(20)]
    gevent.joinall(jobs, timeout=5, raise_error=True)
    assert sum(job.value for job in jobs) == 3
    assert not client.start_request(D)  # full: refused, and the refusal takes nothing
    assert client.is_throttled(D)  # the client remembers the refusal (no IsThrottled ask)
    assert [d.in_flight for d in h.status().domains] == [3]
    client.complete_request(D)
    wait_for(lambda: [d.in_flight for d in h.status().domains] == [2], message="a freed slot")
    assert h.client().start_request(D)  # the freed slot is granted to the next TryStart


def test_a_trigger_starts_as_many_identifiers_as_capacity_allows(start_system, fake_clock):
    """S6.3 (the original starts one per trigger)."""
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([URL1]).with_fetch_delay(0.05)
    for i in range(5):
        ctx.with_needed_oids([f"o{i}"], identifier=f"id{i}")
    h = start_system(ctx, clock=fake_clock, max_concurrent=3, max_per_minute=100)
    for i in range(5):
        h.client().enqueue_identifier(D, f"id{i}", ())
    h.settle()
    assert ctx.max_in_flight[D] == 3
    assert len(ctx.fetch_log) == 5  # the last two started as the first three completed


def test_lone_identifier_walks_its_urls_without_outside_triggers(start_system, fake_clock):
    """in_progress is cleared before the next pick, so one queued identifier tries every URL
    of the domain in turn and then leaves the queue (the original stalled after one)."""
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([URL1, URL2])
    ctx.with_needed_oids(["o1"], identifier="lone")
    h = start_system(ctx, clock=fake_clock)
    _enqueue(h, "lone")
    assert ctx.fetched_urls == [URL1, URL2]
    [domain] = h.status().domains
    assert (domain.queued, domain.in_flight) == (0, 0)


def test_enqueue_merges_tried_urls_so_they_are_not_fetched_again(start_system, fake_clock):
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([URL1, URL2])
    ctx.with_needed_oids(["o1"], identifier="r")
    h = start_system(ctx, clock=fake_clock)
    _enqueue(h, "r", tried={URL1})
    assert ctx.fetched_urls == [URL2]


def test_full_rate_window_wakes_the_queue_when_it_frees(start_system, fake_clock):
    """S6.3 (beyond the original): with nothing in flight and the window full, a timer fires
    when the oldest request leaves the window, and queued work starts then, not later."""
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([URL1])
    for name in ("a", "b", "c"):
        ctx.with_needed_oids([f"{name}-oid"], identifier=name)
    h = start_system(ctx, clock=fake_clock, max_concurrent=5, max_per_minute=2)
    t0 = fake_clock.now()
    for name in ("a", "b", "c"):
        _enqueue(h, name)
    assert [t - t0 for t in ctx.request_starts[D]] == [0, 0]
    [domain] = h.status().domains
    # "a" left the queue once its only URL was tried; "b" (URL tried, not yet re-checked) and
    # "c" wait for the window.
    assert (domain.in_flight, domain.window_used, domain.queued) == (0, 2, 2)
    h.advance(59.9)
    assert len(ctx.fetch_log) == 2
    h.advance(0.1)
    assert [t - t0 for t in ctx.request_starts[D]] == [0, 0, 60.0]
    assert ctx.max_requests_in_window(D, 60.0) == 2


def test_no_url_left_returns_the_reserved_slot(start_system, fake_clock):
    """A dispatch that finds every URL tried gives its window slot back (no request was made)."""
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([URL1])
    ctx.with_needed_oids(["o"], identifier="r")
    h = start_system(ctx, clock=fake_clock, max_per_minute=1)
    _enqueue(h, "r", tried={URL1})
    [domain] = h.status().domains
    assert (domain.queued, domain.in_flight, domain.window_used) == (0, 0, 0)
    assert ctx.fetch_log == []


def test_an_identifier_queued_on_a_domain_is_fetched_from_it_only_through_the_queue(
    start_system, fake_clock
):
    """The main path treats a domain as throttled for an identifier waiting (or being fetched)
    in its queue: no jumping the round-robin, no second fetch of the same objects."""
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([URL1]).with_fetch_delay(0.2)
    ctx.with_needed_oids(["x-oid"], identifier="x").url_provides(URL1, ["x-oid"])
    h = start_system(ctx, clock=fake_clock, max_concurrent=5, max_per_minute=100, synced_delay=0.0)
    h.client().enqueue_identifier(D, "x", ())  # fetching for 0.2 s
    wait_for(lambda: ctx.fetch_log, message="the queue's fetch of x")
    h.enqueue("x")  # a main-path attempt while the domain has capacity to spare
    assert len(ctx.fetch_log) == 1 and ctx.released == {"x"}
