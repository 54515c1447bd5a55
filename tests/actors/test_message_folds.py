"""The main path's folded messages (P4) keep what the SPEC names: every request reaches the
Scheduler's history once and in order (S18.1) — told before the next request starts, the last
one inside ``SyncFinished`` — and a request that brought everything ends at its throttle with
its ``TransferEnded`` alone, the slot freed once (S6.1), while a failure still says why (S18.2,
``test_slot_transfer_end``)."""

from __future__ import annotations

from gevent.event import Event

from actors.fakes import MockSyncContext
from actors.names import SCHEDULER, is_fetch_name
from tests.support.wait import wait_for

ID = "repo"
GONE = "https://gone.example/repo.git"
GOOD = "https://good.example/repo.git"


def _from_fetch_actors(tracer) -> list[tuple[str, str, dict]]:
    return [
        (line.receiver.split("[")[0], line.msg["type"], line.msg)
        for line in tracer.lines
        if is_fetch_name(line.sender)
    ]


def test_p4_a_one_url_syncs_fetch_actor_sends_five_messages_and_the_history_has_its_request(
    start_system, fake_clock, memory_tracer
):
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([GOOD], identifier=ID)
    ctx.with_needed_oids(["tip"], identifier=ID).url_provides(GOOD, ["tip"])
    h = start_system(ctx, clock=fake_clock, tracer=memory_tracer, synced_delay=0.0)
    h.enqueue(ID)
    assert ctx.released == {ID}
    sent: dict[str, list[str]] = {}  # a trace line is written at delivery: order per receiver
    for to, kind, _ in _from_fetch_actors(memory_tracer):
        sent.setdefault(to, []).append(kind)
    assert sent.pop("port")  # the port answers, recorded for replay
    assert sent == {
        # S5.3's first release (a tell), then S5.4's release after the fetch (an ask)
        "Releaser": ["ProcessSatisfiable", "ProcessSatisfiable"],
        # S6.4's check-and-start (an ask), the slot back at the last byte; no RequestDone
        "DomainThrottle": ["TryStart", "TransferEnded"],
        SCHEDULER: ["SyncFinished"],  # with the request: no FetchAttempted of its own
    }
    [finished] = [m for _, kind, m in _from_fetch_actors(memory_tracer) if kind == "SyncFinished"]
    assert (finished["complete"], finished["attempt"]["url"]) == (True, GOOD)
    assert finished["attempt"]["outcome"] == "released"
    [report] = h.system.history(ID).identifiers
    assert [(a.url, a.outcome, a.released) for a in report.attempts] == [(GOOD, "released", 1)]
    [domain] = h.status().domains
    assert (domain.in_flight, domain.window_used) == (0, 1)  # freed once, one window entry


def test_s18_1_an_earlier_request_is_in_the_history_before_the_next_one_ends(
    start_system, fake_clock
):
    gate = Event()
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([GONE, GOOD], identifier=ID)
    ctx.with_needed_oids(["tip"], identifier=ID).url_provides(GOOD, ["tip"])
    ctx.url_fails(GONE, "not_found", "HTTP 404").with_ingest_gate(gate)
    h = start_system(ctx, clock=fake_clock, synced_delay=0.0)
    try:
        h.system.enqueue_sync(ID, "synced")
        wait_for(lambda: ctx.transfer_ends == [GOOD], timeout=10, message="second transfer")
        [report] = h.system.history(ID).identifiers  # the second fetch is still "indexing"
        assert report.state == "syncing"
        assert [(a.url, a.reason) for a in report.attempts] == [(GONE, "not_found")]
    finally:
        gate.set()
    wait_for(lambda: ctx.released == {ID}, timeout=10, message="released")
    h.settle()
    [report] = h.system.history(ID).identifiers
    assert report.state == "done"
    assert [(a.url, a.outcome) for a in report.attempts] == [  # newest first, each once
        (GOOD, "released"),
        (GONE, "failed"),
    ]
