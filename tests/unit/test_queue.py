"""SyncQueueEntry and the debounced SyncQueue (seed phases 1 and 7; SPEC S4.1, S4.3, S4.4)."""

import pytest

from actors.queue import SyncQueueEntry
from tests.support.policy import queue as make_queue

NOW = 1000.0


def test_backoff_doubles_up_to_cap():
    """S4.1: 20 s for 0 and 1 attempts, then 40, 80, and 120 s from the fourth on."""
    entry = SyncQueueEntry.new(0.0, NOW)
    observed = {}
    for count in (0, 1, 2, 3, 4, 5, 100):
        entry.attempt_count = count
        observed[count] = entry.backoff()
    assert observed == {0: 20, 1: 20, 2: 40, 3: 80, 4: 120, 5: 120, 100: 120}


def test_backoff_sequence_through_on_sync_complete():
    """Repeated incomplete syncs schedule the next attempt 20, 40, 80, 120, 120 s later."""
    entry = SyncQueueEntry.new(0.0, NOW)
    now, gaps = NOW, []
    for _ in range(5):
        entry.in_progress = True
        entry.on_sync_complete(now)
        gaps.append(entry.next_attempt - now)
        now = entry.next_attempt
    assert gaps == [20, 40, 80, 120, 120]


def test_new_event_resets_attempt_count():
    """S4.1: a new event resets the count and pulls the attempt to now + delay."""
    entry = SyncQueueEntry(next_attempt=NOW + 120, attempt_count=5)
    entry.on_new_event(10.0, NOW)
    assert entry.attempt_count == 0
    assert entry.next_attempt == NOW + 10


def test_new_event_does_not_delay_a_sooner_attempt():
    entry = SyncQueueEntry.new(5.0, NOW)
    entry.on_new_event(60.0, NOW)
    assert entry.next_attempt == NOW + 5


def test_is_ready_checks_time_and_progress():
    entry = SyncQueueEntry.new(1.0, NOW)
    assert not entry.is_ready(NOW + 0.999)
    assert entry.is_ready(NOW + 1.0)
    entry.in_progress = True
    assert not entry.is_ready(NOW + 5)


@pytest.mark.parametrize("complete", [True, False])
def test_event_arriving_during_a_sync_keeps_its_follow_up(complete):
    """A new event mid-sync schedules a follow-up at its own delay, and the entry survives even
    a sync that reported complete (the original removed it and lost that event's sync)."""
    queue = make_queue()
    queue.enqueue("r", 0.0, NOW)
    assert queue.pop_ready(NOW) == ["r"]
    queue.enqueue("r", 0.5, NOW + 1)
    queue.finish("r", complete=complete, now=NOW + 1.2)
    entry = queue.get("r")
    assert entry is not None
    assert (entry.in_progress, entry.attempt_count, entry.next_attempt) == (False, 0, NOW + 1.5)
    assert queue.pop_ready(NOW + 1.5) == ["r"]


def test_enqueue_sync_debounces_rapid_calls():
    """S4.3: ten enqueues within 100 ms make one entry, ready at the earliest requested time."""
    queue = make_queue()
    now = NOW
    for _ in range(10):
        queue.enqueue("test-repo", 0.5, now)
        now += 0.01
    assert len(queue) == 1
    entry = queue.get("test-repo")
    assert entry.attempt_count == 0
    assert queue.pop_ready(NOW + 0.499) == []
    assert queue.pop_ready(NOW + 0.5) == ["test-repo"]


def test_enqueue_resets_backoff_of_a_failing_identifier():
    queue = make_queue()
    entry = queue.enqueue("r", 60.0, NOW)
    entry.attempt_count, entry.next_attempt = 3, NOW + 120
    queue.enqueue("r", 10.0, NOW)
    assert len(queue) == 1
    assert (entry.attempt_count, entry.next_attempt) == (0, NOW + 10)
    assert queue.next_wakeup() == NOW + 10


def test_pop_ready_marks_in_progress_and_finish_applies_s4_5():
    queue = make_queue()
    queue.enqueue("a", 0.0, NOW)
    queue.enqueue("b", 1.0, NOW)
    assert queue.pop_ready(NOW) == ["a"]
    assert queue.pop_ready(NOW) == []  # in progress
    queue.finish("a", complete=False, now=NOW + 3)
    assert queue.get("a").next_attempt == NOW + 3 + 20
    assert queue.next_wakeup() == NOW + 1
    assert queue.pop_ready(NOW + 5) == ["b"]
    queue.finish("b", complete=True, now=NOW + 6)
    assert "b" not in queue and len(queue) == 1


def test_pop_ready_respects_limit_and_time_order():
    queue = make_queue()
    for i, delay in enumerate([3.0, 1.0, 2.0]):
        queue.enqueue(f"id{i}", delay, NOW)
    assert queue.pop_ready(NOW + 10, limit=2) == ["id1", "id2"]
    assert queue.pop_ready(NOW + 10) == ["id0"]


@pytest.mark.parametrize("ready", [10, 1000])
def test_scan_cost_grows_with_ready_entries_not_queue_size(ready):
    """S4.4: popping k ready entries touches O(k) heap records, whatever the queue size."""
    queue = make_queue()
    for i in range(20_000):
        queue.enqueue(f"later{i}", 3600.0 + i, NOW)
    for i in range(ready):
        queue.enqueue(f"now{i}", 0.0, NOW)
    heap_before = len(queue._heap)
    assert len(queue.pop_ready(NOW)) == ready
    assert heap_before - len(queue._heap) == ready


def test_heap_stays_proportional_to_the_queue_under_repeated_debounce():
    queue = make_queue()
    for round_ in range(200):
        for i in range(50):
            queue.enqueue(f"id{i}", 100.0 - round_ * 0.1, NOW)
    assert len(queue) == 50
    assert len(queue._heap) <= 2 * 50 + 64


def test_backoff_scale_shrinks_the_wait_for_tests_only():
    queue = make_queue(backoff_scale=0.01)
    queue.enqueue("r", 0.0, NOW)
    queue.pop_ready(NOW)
    queue.finish("r", complete=False, now=NOW)
    assert queue.get("r").next_attempt == pytest.approx(NOW + 0.2)


# -- a sync left to the domains' queues (S5.3, S6.3; deviation from S4.5, SyncQueue.hand_over) --


def _handed_over(queue, identifier="r", at=NOW):
    queue.enqueue(identifier, 0.0, at)
    assert queue.pop_ready(at) == [identifier]
    queue.hand_over(identifier, at + 1, hold=120.0)
    return queue.get(identifier)


def test_hand_over_waits_the_hold_not_the_20s_backoff_and_counts_no_failure():
    queue = make_queue()
    entry = _handed_over(queue)
    assert (entry.next_attempt, entry.attempt_count, entry.in_progress) == (NOW + 121, 0, False)
    assert queue.pop_ready(NOW + 21) == []  # S4.5 would have retried here
    assert queue.next_wakeup() == NOW + 121
    assert queue.pop_ready(NOW + 121) == ["r"]  # the safety net still comes


def test_hand_over_hold_is_scaled_like_the_backoff():
    queue = make_queue(backoff_scale=0.01)
    assert _handed_over(queue).next_attempt == pytest.approx(NOW + 1 + 1.2)


def test_hand_over_keeps_the_follow_up_of_an_event_that_arrived_during_the_sync():
    queue = make_queue()
    queue.enqueue("r", 0.0, NOW)
    queue.pop_ready(NOW)
    queue.enqueue("r", 0.5, NOW + 0.2)  # a new event while the sync runs
    queue.hand_over("r", NOW + 1, hold=120.0)
    assert queue.get("r").next_attempt == NOW + 0.7
    assert queue.pop_ready(NOW + 1) == ["r"]


@pytest.mark.parametrize("late", [0.0, 200.0])
def test_queue_falling_short_brings_back_the_s4_1_backoff(late):
    """A queue's failed or partial request: the retry is due 20 s later (attempt 1), unless
    the hold already ends sooner."""
    queue = make_queue()
    _handed_over(queue)
    queue.queue_fell_short("r", NOW + 10 + late)
    entry = queue.get("r")
    assert entry.attempt_count == 1 and not entry.handed_over
    assert entry.next_attempt == min(NOW + 121, NOW + 10 + late + 20)
    assert queue.next_wakeup() == entry.next_attempt


def test_queue_falling_short_touches_only_handed_over_waiting_entries():
    queue = make_queue()
    queue.enqueue("plain", 5.0, NOW)
    queue.queue_fell_short("plain", NOW)
    queue.queue_fell_short("absent", NOW)
    assert (queue.get("plain").next_attempt, queue.get("plain").attempt_count) == (NOW + 5, 0)
    _handed_over(queue, "running")
    assert "running" in queue.pop_ready(NOW + 121)  # the safety net runs: no longer handed over
    queue.queue_fell_short("running", NOW + 122)
    assert queue.get("running").attempt_count == 0 and queue.get("running").in_progress


def test_a_new_event_ends_the_hand_over():
    queue = make_queue()
    _handed_over(queue)
    queue.enqueue("r", 0.5, NOW + 5)
    entry = queue.get("r")
    assert entry.next_attempt == NOW + 5.5 and not entry.handed_over
