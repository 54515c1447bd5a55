"""The domain slot is free while a fetched pack is still being indexed (S6.1, S5.2; issue 16).

The mock port reports each fetch's transfer end and then holds the fetch "indexing" behind a
gate: with one request allowed per domain, a second identifier's request to the same domain
starts while the first is still indexing and unreleased, the remote never sees two requests at
once, and when the gate opens both release and the window holds exactly two entries.
"""

from __future__ import annotations

from gevent.event import Event

from actors.context import FetchFailed, FetchResult
from actors.fakes import MockSyncContext
from actors.trace.replay import replay_all
from tests.support.wait import wait_for

D = "git.example"
URL = f"https://{D}/r.git"


def _two_identifiers(ctx: MockSyncContext) -> MockSyncContext:
    ctx.with_urls([URL])
    for name in ("first", "second"):
        ctx.with_needed_oids([f"{name}-oid"], identifier=name).url_provides(URL, [f"{name}-oid"])
    return ctx


def test_s6_1_a_second_request_starts_while_the_first_pack_is_indexed(start_system):
    gate = Event()
    ctx = _two_identifiers(MockSyncContext().with_ingest_gate(gate))
    h = start_system(ctx, max_concurrent=1, max_per_minute=100, synced_delay=0.0)
    try:
        h.system.enqueue_sync("first", "synced")
        wait_for(lambda: ctx.transfer_ends == [URL], timeout=10, message="first transfer")
        h.system.enqueue_sync("second", "synced")
        wait_for(lambda: len(ctx.transfer_ends) == 2, timeout=10, message="second transfer")
        assert ctx.released == set(), "both packs are still being indexed"
        assert ctx.max_in_flight[D] == 1, "the remote never saw two requests at once"
        assert [url for url, _ in ctx.fetch_log] == [URL, URL]
    finally:
        gate.set()
    wait_for(lambda: ctx.released == {"first", "second"}, timeout=10, message="both released")
    h.settle()
    [domain] = h.status().domains
    assert (domain.in_flight, domain.window_used) == (0, 2)  # one window entry per request


class FailsAfterTransfer(MockSyncContext):
    """index-pack rejects what arrived: the transfer ended, then the fetch fails."""

    def fetch_oids(self, repo_path, url, oids, on_transfer_end=None):
        self.fetch_log.append((url, tuple(oids)))
        self.transfer_ends.append(url)
        if on_transfer_end is not None:
            on_transfer_end()
        raise FetchFailed(url, "protocol", "index-pack: pack has bad object")


def test_s6_1_a_fetch_failing_after_its_transfer_frees_its_slot_once(
    start_system, fake_clock, memory_tracer
):
    ctx = FailsAfterTransfer(clock=fake_clock.now).with_urls([URL])
    ctx.with_needed_oids(["o"], identifier="r")
    h = start_system(ctx, clock=fake_clock, tracer=memory_tracer, synced_delay=0.0)
    h.enqueue("r")
    sent = [line.msg for line in memory_tracer.lines]
    ends = [m for m in sent if m["type"] in ("TransferEnded", "RequestDone")]
    assert [(m["type"], m.get("reason"), m.get("freed")) for m in ends] == [
        ("TransferEnded", None, None),
        ("RequestDone", "protocol", True),  # the reason still ends the request (S18.2)
    ]
    [domain] = h.status().domains
    assert (domain.in_flight, domain.window_used) == (0, 1)


def test_s6_1_throttle_path_frees_the_slot_at_the_transfer_end(start_system, fake_clock):
    """A queued identifier's FetchActor gives its reserved slot back (SlotFreed) when the
    transfer ended, and its QueuedFetchDone carries the reason (S18.2)."""
    gate = Event()
    ctx = _two_identifiers(MockSyncContext(clock=fake_clock.now).with_ingest_gate(gate))
    h = start_system(ctx, clock=fake_clock, max_concurrent=1, max_per_minute=100)
    try:
        for name in ("first", "second"):
            h.client().enqueue_identifier(D, name, ())
        wait_for(lambda: len(ctx.transfer_ends) == 2, timeout=10, message="both transfers")
        assert ctx.released == set() and ctx.max_in_flight[D] == 1
    finally:
        gate.set()
    wait_for(lambda: ctx.released == {"first", "second"}, timeout=10, message="both released")
    h.settle()
    [domain] = h.status().domains
    assert (domain.in_flight, domain.window_used) == (0, 2)


def test_a_fresh_trace_with_transfer_ends_replays_for_every_actor(
    start_system, fake_clock, memory_tracer
):
    """TracedPort records each transfer end; the replay port frees the slot at that point, so
    FetchActors and DomainThrottles replay exactly (S13.3)."""
    ctx = _two_identifiers(MockSyncContext(clock=fake_clock.now))
    ctx.with_urls([f"https://other.example/{n}.git" for n in ("x", "y")])
    h = start_system(
        ctx, clock=fake_clock, tracer=memory_tracer, max_concurrent=1, synced_delay=0.0
    )
    h.enqueue("first")
    h.enqueue("second")
    assert ctx.released == {"first", "second"}
    lines = list(memory_tracer.lines)
    answers = [line.msg["method"] for line in lines if line.type == "PortAnswer"]
    assert answers.count("transfer_ended") == answers.count("fetch_oids") >= 2
    for result in replay_all(lines, h.config):
        assert result.matches, (result.actor, result.divergence, result.expected, result.actual)


def test_a_port_without_transfer_ends_still_frees_every_slot(start_system, fake_clock):
    """A port that never reports the transfer (an older one): the fetch's return frees it."""

    class Silent(MockSyncContext):
        def fetch_oids(self, repo_path, url, oids, on_transfer_end=None):
            self.fetch_log.append((url, tuple(oids)))
            return FetchResult(tuple(oids))

    ctx = Silent(clock=fake_clock.now).with_urls([URL]).with_needed_oids(["o"], identifier="r")
    h = start_system(ctx, clock=fake_clock, synced_delay=0.0)
    h.enqueue("r")
    [domain] = h.status().domains
    assert (domain.in_flight, domain.window_used) == (0, 1)
