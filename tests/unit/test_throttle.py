"""DomainThrottleState and ThrottleManager (seed phases 2 and 3; SPEC S6)."""

from actors.clock import FakeClock
from tests.support.policy import domain_state
from tests.support.policy import manager as make_manager

NOW = 1000.0


def test_concurrent_limit_blocks_when_saturated():
    """S6.1: no capacity once in_flight reaches max_concurrent; a completion frees it."""
    throttle = domain_state("example.com", max_concurrent=3, max_per_minute=100)
    for _ in range(3):
        assert throttle.has_capacity(NOW)
        throttle.start_request(NOW)
    assert not throttle.has_capacity(NOW)
    throttle.complete_request(NOW)
    assert throttle.has_capacity(NOW)


def test_rate_limit_blocks_when_window_full():
    """S6.1: max_per_minute requests inside any 60 s window block, even with nothing in flight.

    A request counts until 60 s after it *ended* (a remote may have seen it at any moment of
    its life), so the window frees 60 s after the first completion."""
    throttle = domain_state("example.com", max_concurrent=100, max_per_minute=2)
    throttle.start_request(NOW)
    throttle.complete_request(NOW + 1)
    throttle.start_request(NOW + 2)
    throttle.complete_request(NOW + 3)
    assert not throttle.has_capacity(NOW + 3)
    assert not throttle.has_capacity(NOW + 60.999)
    assert throttle.window_frees_at(NOW + 3) == NOW + 61
    assert throttle.has_capacity(NOW + 61)


def test_in_flight_requests_fill_the_window_too():
    """A running request counts whatever its age; only its completion starts its 60 s."""
    throttle = domain_state("example.com", max_concurrent=100, max_per_minute=1)
    throttle.start_request(NOW)
    assert not throttle.has_capacity(NOW + 300)
    assert throttle.window_frees_at(NOW + 300) is None  # the completion is the trigger
    throttle.complete_request(NOW + 301)
    assert not throttle.has_capacity(NOW + 360.5)
    assert throttle.has_capacity(NOW + 361)


def test_round_robin_processes_identifiers_fairly():
    """S6.2: A, B, C queued and each released after its turn come out A, B, C, A, B, C."""
    throttle = domain_state("example.com")
    for identifier in "ABC":
        throttle.enqueue_identifier(identifier, set())
    order = []
    for _ in range(6):
        identifier = throttle.next_ready_identifier()
        order.append(identifier)
        throttle.mark_identifier_not_in_progress(identifier)
    assert order == list("ABCABC")


def test_skips_in_progress_identifiers():
    throttle = domain_state("example.com")
    for identifier in "ABC":
        throttle.enqueue_identifier(identifier, set())
    assert [throttle.next_ready_identifier() for _ in range(3)] == list("ABC")
    assert throttle.next_ready_identifier() is None
    throttle.mark_identifier_not_in_progress("A")
    assert throttle.next_ready_identifier() == "A"


def test_remove_identifier_keeps_the_round_robin_position():
    throttle = domain_state("example.com")
    for identifier in "ABCD":
        throttle.enqueue_identifier(identifier, set())
    for _ in range(2):
        throttle.mark_identifier_not_in_progress(throttle.next_ready_identifier())
    throttle.remove_identifier("A")
    assert throttle.next_ready_identifier() == "C"


def test_enqueue_merges_tried_urls():
    throttle = domain_state("example.com")
    throttle.enqueue_identifier("A", {"url1"})
    throttle.enqueue_identifier("A", {"url2"})
    assert throttle.get_tried_urls("A") == {"url1", "url2"}
    assert throttle.queued == 1


def test_try_start_never_overshoots():
    """S6.4: the atomic form refuses instead of counting past a limit."""
    throttle = domain_state("example.com", max_concurrent=2, max_per_minute=100)
    assert [throttle.try_start(NOW) for _ in range(3)] == [True, True, False]
    assert throttle.in_flight == 2


def test_dispatch_ready_starts_as_many_as_capacity_allows():
    """S6.3 (beyond the original, which starts one per trigger)."""
    throttle = domain_state("example.com", max_concurrent=3, max_per_minute=100)
    for identifier in "ABCDE":
        throttle.enqueue_identifier(identifier, {f"{identifier}-tried"})
    started = throttle.dispatch_ready(NOW)
    assert [(i, set(t)) for i, t in started] == [(i, {f"{i}-tried"}) for i in "ABC"]
    assert throttle.in_flight == 3 and not throttle.has_capacity(NOW)


def test_finish_queued_clears_in_progress_before_the_next_pick():
    """The original triggered before clearing in_progress and stalled on a lone identifier."""
    throttle = domain_state("example.com", max_concurrent=1, max_per_minute=100)
    throttle.enqueue_identifier("A", set())
    [(identifier, _)] = throttle.dispatch_ready(NOW)
    throttle.release_slot(identifier, NOW + 1)
    throttle.finish_queued(identifier, "https://example.com/a.git", NOW + 1)
    again = throttle.dispatch_ready(NOW + 1)
    assert [(i, set(t)) for i, t in again] == [("A", {"https://example.com/a.git"})]


def test_the_slot_is_free_before_the_unit_of_work_reports():
    """S5.2 order: the request's slot returns when the request ends, before release work."""
    throttle = domain_state("example.com", max_concurrent=1, max_per_minute=100)
    for identifier in "AB":
        throttle.enqueue_identifier(identifier, set())
    [(first, _)] = throttle.dispatch_ready(NOW)
    throttle.release_slot(first, NOW + 1)
    assert [i for i, _ in throttle.dispatch_ready(NOW + 1)] == ["B"]  # A is still releasing
    throttle.finish_queued(first, "https://example.com/a.git", NOW + 2)
    assert throttle.in_flight == 1 and throttle.window_used(NOW + 2) == 2


def test_finish_queued_without_url_removes_and_returns_the_slot():
    throttle = domain_state("example.com", max_concurrent=1, max_per_minute=1)
    throttle.enqueue_identifier("A", set())
    [(identifier, _)] = throttle.dispatch_ready(NOW)
    throttle.finish_queued(identifier, None, NOW)
    assert throttle.queued == 0
    assert throttle.in_flight == 0 and throttle.window_used(NOW) == 0


def test_wake_at_only_when_the_window_alone_blocks_queued_work():
    throttle = domain_state("example.com", max_concurrent=5, max_per_minute=1)
    throttle.start_request(NOW)
    throttle.complete_request(NOW + 1)
    assert throttle.wake_at(NOW + 1) is None  # nothing queued
    throttle.enqueue_identifier("A", set())
    assert throttle.wake_at(NOW + 1) == NOW + 61


def test_is_throttled_reflects_domain_capacity():
    """Seed phase 3: unknown domains are never throttled; saturation throttles."""
    manager = make_manager(FakeClock(NOW), max_concurrent=2, max_per_minute=100)
    assert not manager.is_throttled("example.com")
    assert manager.start_request("example.com")
    assert manager.start_request("example.com")
    assert manager.is_throttled("example.com")
    manager.complete_request("example.com")
    assert not manager.is_throttled("example.com")
    assert not manager.is_throttled("other.com")


def test_manager_window_frees_with_the_clock():
    clock = FakeClock(NOW)
    manager = make_manager(clock, max_concurrent=5, max_per_minute=1)
    assert manager.start_request("a.com")
    manager.complete_request("a.com")
    assert manager.is_throttled("a.com") and not manager.start_request("a.com")
    clock.advance(60)
    assert not manager.is_throttled("a.com")


def test_enqueue_identifier_creates_domain_throttle():
    manager = make_manager()
    manager.enqueue_identifier("example.com", "A", {"u"})
    assert manager.has_queued_identifier("example.com", "A")
    assert "example.com" in manager.throttles


def test_a_slot_whose_request_reached_nobody_leaves_no_window_entry():
    """A throttle-path request the fetch policy refused (S3.4, S18.2) frees its slot at once
    and is not counted in the rate window (S6.1 counts what the remote sees)."""
    throttle = domain_state("example.com", max_concurrent=2, max_per_minute=30)
    throttle.enqueue_identifier("refused")
    throttle.enqueue_identifier("fetched")
    assert [i for i, _ in throttle.dispatch_ready(NOW)] == ["refused", "fetched"]
    throttle.release_slot("refused", NOW + 1, contacted=False)
    throttle.release_slot("fetched", NOW + 1)
    assert throttle.in_flight == 0 and throttle.window_used(NOW + 2) == 1
