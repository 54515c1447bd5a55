"""Two actor systems over one cluster (S19.2), in process: leases and the shared ledger.

Both systems see one world (one MockSyncContext: the held events and the remote servers are
shared, as the database and the internet are) and each is its own node of one
:class:`~actors.coordination.MemoryCluster` (the contract of ``tests/store/test_coordination.py``
shows it keeps PostgreSQL's promises). Time is one FakeClock; the mock's counters see every
request of both nodes, as a remote server would. ``test_cluster_pg.py`` repeats the main case on
the real PostgreSQL and a real git server.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from actors.coordination import MemoryCluster, MemoryCoordination
from actors.fakes import MockSyncContext
from messages.port import LedgerAnswer

DOMAINS = ("one.example", "two.example", "three.example")
MAX_CONCURRENT, MAX_PER_WINDOW, WINDOW = 2, 4, 0.25
CONFIG = dict(max_concurrent=MAX_CONCURRENT, max_per_minute=MAX_PER_WINDOW, rate_window=WINDOW)


class NodeContext:
    """One node's port: the shared world, its own coordination (None: no cluster at all)."""

    def __init__(self, world: MockSyncContext, coordination: MemoryCoordination | None) -> None:
        self.world, self.coordination = world, coordination

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world, name)

    def take_lease(self, identifier: str) -> bool:
        return self.coordination is None or self.coordination.take_lease(identifier)

    def release_lease(self, identifier: str) -> None:
        if self.coordination is not None:
            self.coordination.release_lease(identifier)

    def ledger_start(self, domain: str, *limits: Any) -> LedgerAnswer:
        if self.coordination is None:
            return LedgerAnswer(True)
        return self.coordination.ledger_start(domain, *limits)

    def ledger_done(self, domain: str, contacted: bool) -> None:
        if self.coordination is not None:
            self.coordination.ledger_done(domain, contacted)


def _world(clock, identifiers: int = 30) -> MockSyncContext:
    """One URL per identifier, which has every object: a second fetch is always a duplicate."""
    ctx = MockSyncContext(clock=clock.now).with_fetch_delay(0.005)
    for i in range(identifiers):
        identifier = f"repo{i:02d}"
        url = f"https://{DOMAINS[i % 3]}/{identifier}.git"
        ctx.with_urls([url], identifier=identifier)
        ctx.with_needed_oids([f"{identifier}-a", f"{identifier}-b"], identifier=identifier)
        ctx.url_provides(url, [f"{identifier}-a", f"{identifier}-b"])
    return ctx


def _run_until_released(world, nodes, clock, steps: int = 2000) -> None:
    for node in nodes:
        node.settle()
    for _ in range(steps):
        if not world.pending_identifiers():
            return
        clock.advance(0.05)
        for node in nodes:
            node.settle()


def _two_nodes(start_system, fake_clock, world, shared: bool, **config: Any):
    cluster = MemoryCluster(fake_clock.now)
    return [
        start_system(
            NodeContext(world, cluster.node(name) if shared else None),
            clock=fake_clock,
            **{**CONFIG, **config},
        )
        for name in ("a", "b")
    ]


@pytest.mark.parametrize("shared", [True, False], ids=["cluster", "no-coordination"])
def test_s19_2_two_nodes_fetch_each_url_once_and_keep_the_limits_summed(
    start_system, fake_clock, shared
):
    """With the cluster every identifier is fetched once and the remotes see the limits summed
    over both nodes; without it (the control) the same run breaks both."""
    world = _world(fake_clock)
    nodes = _two_nodes(start_system, fake_clock, world, shared)
    for i in range(30):
        for node in nodes:  # both nodes admitted an event of every identifier
            node.system.enqueue_sync(f"repo{i:02d}", "synced")
    _run_until_released(world, nodes, fake_clock)
    assert world.pending_identifiers() == []
    per_url = Counter(world.fetched_urls)
    in_flight = max(world.max_in_flight.values())
    in_window = max(world.max_requests_in_window(d, WINDOW) for d in DOMAINS)
    if shared:
        assert max(per_url.values()) == 1, per_url.most_common(3)
        assert in_flight == MAX_CONCURRENT  # reached, never passed
        assert in_window <= MAX_PER_WINDOW
    else:
        assert max(per_url.values()) == 2 and in_flight > MAX_CONCURRENT


def test_s19_2_a_leased_identifier_waits_without_backoff(start_system, fake_clock):
    world = _world(fake_clock, identifiers=1)
    cluster = MemoryCluster(fake_clock.now)
    other = cluster.node("other")
    assert other.take_lease("repo00")  # another node syncs it
    h = start_system(NodeContext(world, cluster.node("a")), clock=fake_clock, **CONFIG)
    h.enqueue("repo00")
    for _ in range(5):  # 5 s of retries, every lease_retry (1 s)
        h.advance(1.0)
    assert world.fetched_urls == []
    entry = h.system.history("repo00").identifiers[0]
    assert (entry.state, entry.attempt_count, entry.requests) == ("queued", 0, 0)
    assert entry.next_attempt_in is not None and entry.next_attempt_in <= 1.0  # no backoff
    other.release_lease("repo00")
    h.advance(1.0)
    assert world.released == {"repo00"}


def test_s19_2_a_dead_nodes_lease_expires_and_another_node_syncs(start_system, fake_clock):
    world = _world(fake_clock, identifiers=1)
    cluster = MemoryCluster(fake_clock.now, ttl=10.0)
    assert cluster.node("dead").take_lease("repo00")  # ... then SIGKILL: never renewed
    h = start_system(NodeContext(world, cluster.node("a")), clock=fake_clock, **CONFIG)
    h.enqueue("repo00")
    h.advance(9.0)
    assert world.fetched_urls == []
    for _ in range(6):  # the lease expires at 10 s; the next retry (every 1 s) takes it
        h.advance(1.0)
    assert world.released == {"repo00"}


def test_s19_2_a_domain_full_elsewhere_starts_when_the_ledger_says(start_system, fake_clock):
    """Another node used the whole window: the DomainThrottle queues the identifier and starts
    it at the instant the ledger named (a timer), not before and not on a poll."""
    url = "https://one.example/repo00.git"
    world = MockSyncContext(clock=fake_clock.now).with_urls([url], identifier="repo00")
    world.with_needed_oids(["a"], identifier="repo00").url_provides(url, ["a"])
    cluster = MemoryCluster(fake_clock.now)
    other = cluster.node("other")
    for _ in range(MAX_PER_WINDOW):
        assert other.ledger_start("one.example", MAX_CONCURRENT, MAX_PER_WINDOW, 10.0).granted
        other.ledger_done("one.example", contacted=True)
    ctx = NodeContext(world, cluster.node("a"))
    h = start_system(ctx, clock=fake_clock, **{**CONFIG, "rate_window": 10.0})
    h.enqueue("repo00")
    h.advance(1.0)  # the sync ran: every URL of one.example throttled cluster-wide
    assert world.fetched_urls == []
    h.advance(8.9)
    assert world.fetched_urls == []
    h.advance(0.2)  # 10 s after the other node's requests ended
    assert world.fetched_urls == [url]
    assert world.released == {"repo00"}


def test_s19_2_adopting_a_stopped_nodes_identifiers_keeps_this_nodes_own_delays(
    start_system, fake_clock
):
    """EnqueuePending(adopt=True) queues what no entry here queues (at the restart delay) and
    leaves an entry this node has alone: a user's 180 s delay is not cut short (S4.2)."""
    world = _world(fake_clock, identifiers=2)
    h = start_system(NodeContext(world, None), clock=fake_clock, **CONFIG)
    h.enqueue("repo00", "user")  # this node's own, waiting for a push (180 s)
    h.system.adopt_pending()  # repo01 was held by a node that stopped
    h.settle()
    h.advance(1.0)
    assert world.released == {"repo01"}
    assert world.fetched_urls == ["https://two.example/repo01.git"]
    entry = h.system.history("repo00").identifiers[0]
    assert entry.state == "queued" and entry.next_attempt_in is not None
    assert entry.next_attempt_in > 170


def test_s13_3_a_cluster_run_replays_from_its_trace(start_system, fake_clock, memory_tracer):
    """Leases refused and ledger refusals are port answers in the trace: every actor of a node
    that met both replays exactly (the DomainThrottle's ledger calls included)."""
    from actors.config import SyncConfig
    from actors.names import parse_throttle_name
    from actors.trace.replay import replay_all

    world = _world(fake_clock, identifiers=6)
    cluster = MemoryCluster(fake_clock.now)
    other = cluster.node("other")
    assert other.take_lease("repo00")  # leased elsewhere for a while
    for _ in range(MAX_PER_WINDOW):  # and one.example's window used up elsewhere
        assert other.ledger_start("one.example", MAX_CONCURRENT, MAX_PER_WINDOW, 5.0).granted
        other.ledger_done("one.example", contacted=True)
    config = {**CONFIG, "rate_window": 5.0}
    h = start_system(
        NodeContext(world, cluster.node("a")), clock=fake_clock, tracer=memory_tracer, **config
    )
    for i in range(6):
        h.enqueue(f"repo{i:02d}")
    h.advance(1.0)
    other.release_lease("repo00")
    _run_until_released(world, [h], fake_clock)
    assert world.pending_identifiers() == []
    h.system.stop()
    lines = memory_tracer.lines
    methods = Counter(line.msg.get("method") for line in lines if line.type == "PortAnswer")
    assert methods["take_lease"] > 6  # the leased one was refused, then taken
    assert methods["ledger_done"] >= 6
    refused = [
        line
        for line in lines
        if line.type == "PortAnswer"
        and line.msg.get("method") == "ledger_start"
        and not line.msg["value"]["granted"]
    ]
    assert refused and all(parse_throttle_name(line.sender) for line in refused)
    results = replay_all(lines, SyncConfig(**config))
    assert results and all(r.matches for r in results), [
        (r.actor, r.divergence) for r in results if not r.matches
    ]
    # the ledger's answer is an input: granted instead of refused, the throttle decides otherwise
    import dataclasses

    from actors.trace.replay import replay

    first = refused[0]
    granted = {**first.msg, "value": {**first.msg["value"], "granted": True}}
    changed = [dataclasses.replace(x, msg=granted) if x is first else x for x in lines]
    assert replay(lines, first.sender, SyncConfig(**config)).matches
    assert not replay(changed, first.sender, SyncConfig(**config)).matches
