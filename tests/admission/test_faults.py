"""The rate limit on logging the relay's own faults (S14.2): once per distinct fault, then at
most once per window with the count of what was not logged."""

from grasp.admission.faults import FaultLimiter, fault_key


def _raise(kind: type[Exception]) -> BaseException:
    try:
        raise kind("boom")
    except Exception as exc:
        return exc


def test_s14_2_a_fault_is_logged_once_per_window_with_the_suppressed_count():
    limiter = FaultLimiter(window_secs=60)
    assert limiter.admit("k", 0.0) == 0
    assert [limiter.admit("k", t) for t in (1.0, 30.0, 59.9)] == [None, None, None]
    assert limiter.admit("k", 60.0) == 3
    assert limiter.admit("k", 61.0) is None
    assert limiter.admit("k", 200.0) == 1


def test_s14_2_distinct_faults_are_counted_apart():
    limiter = FaultLimiter(window_secs=60)
    assert limiter.admit("a", 0.0) == 0
    assert limiter.admit("b", 1.0) == 0
    assert limiter.admit("a", 2.0) is None
    assert limiter.admit("b", 61.0) == 0


def test_s14_2_memory_is_bounded_by_forgetting_the_least_recent_fault():
    limiter = FaultLimiter(window_secs=60, max_distinct=2)
    limiter.admit("a", 0.0)
    limiter.admit("b", 0.0)
    limiter.admit("a", 1.0)  # a is now the most recent
    limiter.admit("c", 2.0)  # b is forgotten
    assert limiter.admit("a", 3.0) is None  # still remembered: within its window
    assert limiter.admit("b", 3.0) == 0  # forgotten: logged as new


def test_s14_2_a_fault_is_its_type_and_where_it_was_raised():
    one, same_place = _raise(ValueError), _raise(ValueError)
    other_type = _raise(KeyError)
    assert fault_key(one) == fault_key(same_place)
    assert fault_key(one)[0] == "ValueError" and fault_key(one)[1].endswith("test_faults.py")
    assert fault_key(other_type) != fault_key(one)
    assert fault_key(ValueError("never raised")) == ("ValueError", "?", 0)
