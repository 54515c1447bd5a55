"""The sync history policy (S18): bounded, and each thing logged once (pure, clock-injected)."""

from __future__ import annotations

import logging

import pytest

from actors.history import SyncHistory, known, most_relevant
from actors.queue import SyncQueueEntry
from messages.scheduler import FetchAttempted

ID = "repo"
A, B, GIT = "https://a.example/r.git", "https://b.example/r.git", "git://old.example/r.git"


def failed(url: str, reason: str, started: float, **kw) -> FetchAttempted:
    return FetchAttempted(ID, url, reason=reason, started=started, seconds=0.5, **kw)


def released(url: str, started: float) -> FetchAttempted:
    return FetchAttempted(
        ID, url, outcome="released", fetched=1, released=1, started=started, seconds=0.25
    )


def levels(history: SyncHistory, *attempts: FetchAttempted) -> list[int]:
    return [history.record(a, a.started or 0.0).level for a in attempts]


W, D = logging.WARNING, logging.DEBUG


def test_s18_2_a_policy_refusal_is_permanent_and_said_once():
    history = SyncHistory(20, 100)
    notice = history.record(failed(GIT, "policy", 10.0, detail="git:// is disabled"), 10.5)
    assert notice.level == W
    assert GIT in notice.text and "git:// is disabled" in notice.text
    assert "not tried again" in notice.text
    assert history.refused(ID) == {GIT}
    assert history.refused("other") == frozenset()
    assert levels(history, failed(GIT, "policy", 20.0)) == [D]  # never news again


def test_s18_2_missing_objects_is_a_warning_once_per_identifier_and_url():
    history = SyncHistory(20, 100)
    lacking = [failed(A, "missing_objects", t, missing=2) for t in (1.0, 2.0, 3.0)]
    assert levels(history, *lacking) == [W, D, D]
    assert "without 2 of the needed objects" in history.record(lacking[0], 4.0).text
    assert levels(history, failed(B, "missing_objects", 5.0, missing=1)) == [W]  # another URL
    assert history.refused(ID) == frozenset()  # the server may get the commits: not permanent


def test_s18_2_a_transient_failure_is_said_again_only_when_its_reason_changes():
    history = SyncHistory(20, 100)
    sequence = [
        failed(A, "not_found", 1.0),
        failed(A, "not_found", 2.0),
        failed(A, "http_error", 3.0),
        failed(A, "http_error", 4.0),
        failed(A, "not_found", 5.0),
        released(A, 6.0),
        failed(A, "not_found", 7.0),  # a relapse after a success is news again
    ]
    assert levels(history, *sequence) == [W, D, W, D, W, D, W]


def test_s18_1_attempts_are_bounded_per_identifier_and_reported_newest_first():
    history = SyncHistory(3, 100)
    for t in range(5):
        history.record(failed(A, "timeout", float(t), detail=f"try {t}"), float(t) + 0.5)
    entry = SyncQueueEntry(next_attempt=40.0, attempt_count=5)
    report = history.report(ID, 10.0, entry)
    assert report.state == "queued" and report.attempt_count == 5
    assert report.next_attempt_in == 30.0 and report.requests == 5
    assert [a.detail for a in report.attempts] == ["try 4", "try 3", "try 2"]
    assert [a.ago for a in report.attempts] == [6.0, 7.0, 8.0]
    [url] = report.urls
    assert (url.url, url.attempts, url.reason, url.ago, url.permanent) == (
        A,
        5,
        "timeout",
        6.0,
        False,
    )


def test_s18_1_identifiers_are_bounded_least_recently_attempted_first():
    history = SyncHistory(20, 2)
    for n, identifier in enumerate(["one", "two", "one", "three"]):
        history.record(FetchAttempted(identifier, A, started=float(n)), float(n))
    assert sorted(history.identifiers()) == ["one", "three"]
    assert history.report("two", 9.0, None).attempts == ()


def test_a_report_says_syncing_done_or_queued():
    history = SyncHistory(20, 100)
    history.record(released(A, 1.0), 1.5)
    assert history.report(ID, 2.0, None).state == "done"
    running = SyncQueueEntry(next_attempt=1.0, in_progress=True)
    assert history.report(ID, 2.0, running).state == "syncing"
    assert history.report(ID, 2.0, running).next_attempt_in is None
    assert history.report("never", 2.0, SyncQueueEntry(5.0)).attempts == ()


def test_held_identifiers_come_first_then_the_most_recently_attempted():
    history = SyncHistory(20, 100)
    for n, identifier in enumerate(["done-old", "held-old", "done-new", "held-new"]):
        history.record(FetchAttempted(identifier, A, started=float(n)), float(n))
    queued = {"held-old": 50.0, "held-new": 60.0, "held-never": 10.0, "held-later": 99.0}
    order = most_relevant(queued, history, 10)
    assert order == ["held-new", "held-old", "held-never", "held-later", "done-new", "done-old"]
    assert most_relevant(queued, history, 2) == ["held-new", "held-old"]
    assert most_relevant(queued, history, 3) == ["held-new", "held-old", "held-never"]
    assert known(queued, history) == 6


def test_ties_go_by_identifier_whatever_the_insertion_order():
    """The Scheduler's answer must not depend on set or dict order (it is replayed)."""
    for names in (["b", "a", "c"], ["c", "b", "a"]):
        history = SyncHistory(20, 100)
        for identifier in names:
            history.record(FetchAttempted(identifier, A, started=1.0), 1.0)
        queued = {f"w{n}": 5.0 for n in reversed(names)} | {n: 9.0 for n in names[:2]}
        held_first = sorted(names[:2])
        done = [n for n in ["a", "b", "c"] if n not in held_first]
        assert most_relevant(queued, history, 10) == [*held_first, "wa", "wb", "wc", *done]


def test_bounds_must_be_positive():
    with pytest.raises(ValueError):
        SyncHistory(0, 10)
    with pytest.raises(ValueError):
        SyncHistory(10, 0)
