"""The sync history through the real actors (S18): FetchActors tell the Scheduler each request,
a policy refusal is never asked again, throttle-path requests are recorded with their queue, and
the messages that end a request or a sync carry the URL and the reason."""

from __future__ import annotations

import logging

from actors.fakes import MockSyncContext

ID = "held"
GONE = "https://gone.example/held.git"
LACKING = "https://lacking.example/held.git"
OLD = "git://old.example/held.git"


def three_urls(clock) -> MockSyncContext:
    ctx = MockSyncContext(clock=clock.now).with_urls([GONE, LACKING, OLD], identifier=ID)
    ctx.with_needed_oids(["tip"], identifier=ID)
    return ctx.url_fails(GONE, "not_found", "HTTP 404").url_fails(OLD, "policy", "refused")


def test_s18_2_a_policy_refusal_is_never_contacted_again(start_system, fake_clock, caplog):
    caplog.set_level(logging.DEBUG, logger="actors")
    ctx = three_urls(fake_clock)
    h = start_system(ctx, clock=fake_clock, synced_delay=0.0)
    h.enqueue(ID)
    for backoff in (20.0, 40.0, 80.0):
        h.advance(backoff)
    assert ctx.fetched_urls.count(OLD) == 1
    assert ctx.fetched_urls.count(GONE) == ctx.fetched_urls.count(LACKING) == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 3, warnings  # one per URL, whatever the number of retries
    assert sum(OLD in w and "not tried again" in w for w in warnings) == 1
    assert sum(LACKING in w and "without 1 of the needed objects" in w for w in warnings) == 1
    assert sum(GONE in w and "(not_found): HTTP 404" in w for w in warnings) == 1

    [report] = h.system.history(ID).identifiers
    assert (report.state, report.attempt_count, report.requests) == ("queued", 4, 9)
    assert report.next_attempt_in == 120.0  # S4.1's cap after the fourth incomplete sync
    by_url = {u.url: u for u in report.urls}
    assert [u.url for u in report.urls] == [GONE, LACKING, OLD]
    assert (by_url[OLD].attempts, by_url[OLD].reason, by_url[OLD].permanent) == (1, "policy", True)
    assert (by_url[LACKING].reason, by_url[LACKING].missing) == ("missing_objects", 1)
    assert by_url[GONE].reason == "not_found" and by_url[GONE].detail == "HTTP 404"
    newest = report.attempts[0]
    assert (newest.url, newest.queue, newest.outcome, newest.ago) == (LACKING, None, "failed", 0)

    ctx.url_provides(LACKING, ["tip"])  # pushed to the other forge at last
    h.advance(120.0)
    assert ctx.released == {ID}
    [report] = h.system.history(ID).identifiers
    assert report.state == "done"
    assert (report.attempts[0].outcome, report.attempts[0].released) == ("released", 1)
    assert h.system.history("unknown").identifiers == ()


def test_s18_2_ending_messages_carry_url_and_reason(start_system, fake_clock, memory_tracer):
    ctx = three_urls(fake_clock)
    h = start_system(ctx, clock=fake_clock, tracer=memory_tracer, synced_delay=0.0)
    h.enqueue(ID)
    sent = [line.msg for line in memory_tracer.lines]
    done = [(m["url"], m["reason"]) for m in sent if m["type"] == "RequestDone"]
    assert done == [(GONE, "not_found"), (LACKING, "missing_objects"), (OLD, "policy")]
    [finished] = [m for m in sent if m["type"] == "SyncFinished"]
    assert (finished["complete"], finished["url"], finished["reason"]) == (False, OLD, "policy")
    # Each request reaches the Scheduler once: told before the next one starts, the last one
    # inside the SyncFinished (P4's fold; the history is the same).
    attempted = [m for m in sent if m["type"] == "FetchAttempted"] + [finished["attempt"]]
    assert [(m["url"], m["outcome"], m["reason"]) for m in attempted] == [
        (GONE, "failed", "not_found"),
        (LACKING, "failed", "missing_objects"),
        (OLD, "failed", "policy"),
    ]
    windows = {d.domain: (d.in_flight, d.window_used) for d in h.status().domains}
    assert windows == {  # the refused request reached nobody: no rate-window entry (S6.1)
        "gone.example": (0, 1),
        "lacking.example": (0, 1),
        "old.example": (0, 0),
    }
    h.advance(20.0)
    spawned = [
        m for m in (line.msg for line in memory_tracer.lines) if m["type"] == "SyncIdentifier"
    ]
    assert [sorted(m["skip_urls"]) for m in spawned] == [[], [OLD]]


def test_s18_1_throttle_path_requests_are_recorded_with_their_queue(start_system, fake_clock):
    """A domain at its limit takes the identifier into its queue; the request it makes later
    is in the history with that domain as its path, and the end of the sync says why."""
    url = "https://busy.example/held.git"
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([url], identifier=ID)
    ctx.with_needed_oids(["tip"], identifier=ID).url_provides(url, ["tip"])
    h = start_system(ctx, clock=fake_clock, synced_delay=0.0, max_concurrent=1)
    assert h.client().start_request("busy.example")  # the test holds the only slot
    h.enqueue(ID)
    assert ctx.fetched_urls == []
    h.client().complete_request("busy.example")
    h.settle()
    assert ctx.released == {ID}
    [report] = h.system.history(ID).identifiers
    [attempt] = report.attempts
    assert (attempt.url, attempt.queue, attempt.outcome) == (url, "busy.example", "released")


def test_s18_2_a_sync_whose_release_failed_says_so(start_system, fake_clock, memory_tracer):
    """Every object already present, the release failing (S5.3's deviation): the sync ends
    ``release_failed``, not ``no_url``, and the Releaser's WARNING names the error."""
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([LACKING], identifier=ID)
    ctx.needed_oids[ID] = set()  # held, but the objects are here
    ctx.release_fails(ID, times=2)  # the first pass (told) and the awaited one
    h = start_system(ctx, clock=fake_clock, tracer=memory_tracer, synced_delay=0.0)
    h.enqueue(ID)
    sent = [line.msg for line in memory_tracer.lines]
    [finished] = [m for m in sent if m["type"] == "SyncFinished"]
    assert (finished["complete"], finished["url"], finished["reason"]) == (
        False,
        None,
        "release_failed",
    )
    assert ctx.fetch_log == [] and h.status().scheduler.next_attempts == ((ID, 20.0),)
    h.advance(20.0)
    assert ctx.released == {ID}


def test_s18_1_objects_already_present_make_no_attempt_and_no_request(
    start_system, fake_clock, memory_tracer
):
    """Nothing absent (the relay counts present objects as needed, S2.3): the sync's "fetch"
    asks nobody, so the domain's window stays empty (S6.1), the history records no attempt
    (S18.1), and the release it runs instead ends the sync."""
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([GONE, LACKING], identifier=ID)
    ctx.with_present_oids(["tip"], identifier=ID).release_fails(ID)  # the first pass (told)
    h = start_system(ctx, clock=fake_clock, tracer=memory_tracer, synced_delay=0.0)
    h.enqueue(ID)
    assert ctx.released == {ID} and ctx.fetch_log == []
    sent = [line.msg for line in memory_tracer.lines]
    assert [m for m in sent if m["type"] == "FetchAttempted"] == []
    [done] = [m for m in sent if m["type"] == "RequestDone"]  # one URL walked, not two
    assert (done["url"], done["reason"]) == (GONE, "nothing_absent")
    windows = {d.domain: (d.in_flight, d.window_used) for d in h.status().domains}
    assert windows == {"gone.example": (0, 0)}
    assert h.system.history(ID).identifiers == ()
