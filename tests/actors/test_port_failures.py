"""Failures at the port are typed (ARCHITECTURE §8): ``FetchFailed`` is handled by the sync
functions; anything else is a bug — logged once with its traceback by the FetchActor, reported as
an incomplete sync, and retried by the Scheduler's backoff (S4.1)."""

import logging

from actors.context import FetchFailed
from actors.fakes import MockSyncContext

A = "https://a.example/r.git"


class BuggyContext(MockSyncContext):
    """A port whose first ``fetch_oids`` hits a bug (a KeyError), then works."""

    def __init__(self, clock, bugs=1):
        super().__init__(clock=clock)
        self.bugs = bugs

    def fetch_oids(self, repo_path, url, oids, on_transfer_end=None):
        if self.bugs:
            self.bugs -= 1
            self.fetch_log.append((url, tuple(oids)))
            raise KeyError("injected bug")
        return super().fetch_oids(repo_path, url, oids, on_transfer_end)


def _bug_records(caplog):
    return [r for r in caplog.records if r.exc_info and r.exc_info[0] is KeyError]


def test_an_unexpected_exception_is_logged_with_its_traceback_and_retried(
    start_system, fake_clock, caplog
):
    caplog.set_level(logging.INFO, logger="actors")
    ctx = BuggyContext(fake_clock.now).with_urls([A])
    ctx.with_needed_oids(["o1"], identifier="repo").url_provides(A, ["o1"])
    h = start_system(ctx, clock=fake_clock, synced_delay=0.0)
    h.enqueue("repo")
    [record] = _bug_records(caplog)  # once, with the traceback, by the FetchActor
    assert record.levelno == logging.ERROR and record.name == "actors.fetch"
    assert "injected bug" in caplog.text and "Traceback" in caplog.text
    assert ctx.released == set() and h.status().queue_size == 1
    [domain] = h.status().domains
    assert domain.in_flight == 0  # the request's slot came back despite the bug
    h.advance(19.9)
    assert len(ctx.fetch_log) == 1
    h.advance(0.1)  # the 20 s backoff of a first incomplete attempt (S4.1)
    assert [url for url, _ in ctx.fetch_log] == [A, A]
    assert ctx.released == {"repo"} and h.status().queue_size == 0
    assert len(_bug_records(caplog)) == 1


def test_a_fetch_failure_is_not_a_bug(start_system, fake_clock, caplog):
    """The port's own failure type is a WARNING naming URL and reason, without a traceback,
    said once by the Scheduler's sync history and not again on the retry (S18.2)."""
    caplog.set_level(logging.INFO, logger="actors")
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([A]).url_fails(A)
    ctx.with_needed_oids(["o1"], identifier="repo")
    h = start_system(ctx, clock=fake_clock, synced_delay=0.0)
    h.enqueue("repo")
    h.advance(20.0)  # the retry after the first backoff step fails the same way
    assert [url for url, _ in ctx.fetch_log] == [A, A]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [(r.name, r.getMessage()) for r in warnings] == [
        (
            "actors.scheduler",
            f"repo: fetch from {A} failed (refused): configured to fail; retried with backoff",
        )
    ]
    assert not any(r.exc_info for r in caplog.records)


def test_fetch_failed_names_url_and_reason_and_refuses_unknown_reasons():
    failure = FetchFailed(A, "timeout", "no answer in 30 s")
    assert (failure.url, failure.reason) == (A, "timeout")
    assert str(failure) == f"fetch from {A} failed (timeout): no answer in 30 s"
    try:
        FetchFailed(A, "gremlins")
    except ValueError as exc:
        assert "gremlins" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("an unknown reason was accepted")
