"""Cluster coordination (S19.2): identifier leases and the shared throttle ledger.

One contract, run on the real PostgreSQL (``grasp.store.cluster.PostgresCoordination``, several
nodes over one database) and on the in-memory cluster the actor tests use
(``actors.coordination.MemoryCluster``), so the fake keeps the real thing's promises. Times are
real and short (TTL well under a second); every wait polls with a bounded deadline.
A single process (SQLite) grants everything: the last tests say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest

from actors.coordination import MemoryCluster
from grasp.store.cluster import LocalCoordination, PostgresCoordination, make_node_id
from grasp.store.pg_schema import MIGRATIONS
from grasp.store.postgres import PostgresEventStore
from tests.support.wait import wait_for

TTL = 0.6  # short leases: an expiry is seen within about a second
POLL = 0.05

Node = Any  # PostgresCoordination | MemoryCoordination
NewNode = Callable[..., Node]


class CoordinationContract:
    """What every implementation of leases and ledger promises; ``new_node(name, ttl)``."""

    # -- leases -------------------------------------------------------------------------

    def test_s19_2_a_lease_is_held_by_one_node_at_a_time(self, new_node: NewNode) -> None:
        a, b = new_node("a"), new_node("b")
        assert a.take_lease("repo")
        assert not b.take_lease("repo")
        assert b.take_lease("other")  # leases are per identifier
        assert a.take_lease("repo")  # re-entrant on the holder (main and throttle path)
        a.release_lease("repo")
        assert not b.take_lease("repo"), "released once of twice: still held"
        a.release_lease("repo")
        assert b.take_lease("repo")
        assert not a.take_lease("repo")

    def test_s19_2_a_dead_nodes_lease_expires(self, new_node: NewNode) -> None:
        a, b = new_node("a", ttl=TTL), new_node("b", ttl=TTL)
        taken = time.monotonic()
        assert a.take_lease("repo")  # ... and a dies: nobody renews
        assert not b.take_lease("repo")
        wait_for(lambda: b.take_lease("repo"), timeout=5, message="the dead node's lease")
        assert time.monotonic() - taken >= TTL * 0.8  # not before its expiry (clock slack)
        assert not new_node("c", ttl=TTL).take_lease("repo"), "the new holder keeps it"

    def test_s19_2_renewal_keeps_a_running_syncs_lease(self, new_node: NewNode) -> None:
        a, b = new_node("a", ttl=TTL), new_node("b", ttl=TTL)
        assert a.take_lease("repo")
        deadline = time.monotonic() + 3 * TTL
        while time.monotonic() < deadline:
            a.renew()
            assert not b.take_lease("repo")
            gevent.sleep(TTL / 6)
        a.release_lease("repo")
        assert b.take_lease("repo")

    # -- ledger -------------------------------------------------------------------------

    def test_s6_4_s19_2_in_flight_limit_is_summed_over_nodes(self, new_node: NewNode) -> None:
        a, b = new_node("a"), new_node("b")
        assert a.ledger_start("d.example", 2, 100, 60.0).granted
        assert b.ledger_start("d.example", 2, 100, 60.0).granted
        refused = a.ledger_start("d.example", 2, 100, 60.0)
        assert not refused.granted and 0 < refused.retry_in <= 1.0  # poll: b's end is b's news
        assert a.ledger_start("e.example", 2, 100, 60.0).granted  # per domain
        b.ledger_done("d.example", contacted=True)
        assert a.ledger_start("d.example", 2, 100, 60.0).granted

    def test_s6_1_s19_2_window_counts_until_one_window_after_the_end(
        self, new_node: NewNode
    ) -> None:
        a, b = new_node("a"), new_node("b")
        window = 1.0
        for node in (a, b, a):
            assert node.ledger_start("d.example", 5, 3, window).granted
            node.ledger_done("d.example", contacted=True)
        ended = time.monotonic()
        refused = b.ledger_start("d.example", 5, 3, window)
        assert not refused.granted
        assert 0.5 < refused.retry_in <= window  # the oldest entry leaves at its end + window
        wait_for(lambda: b.ledger_start("d.example", 5, 3, window).granted, timeout=5)
        assert time.monotonic() - ended >= window * 0.3  # the first of the three had to leave

    def test_s6_1_a_request_that_never_left_leaves_no_window_entry(self, new_node: NewNode) -> None:
        a = new_node("a")
        assert a.ledger_start("d.example", 5, 1, 60.0).granted
        a.ledger_done("d.example", contacted=False)  # the fetch policy refused the URL
        assert a.ledger_start("d.example", 5, 1, 60.0).granted
        a.ledger_done("d.example", contacted=True)
        assert not a.ledger_start("d.example", 5, 1, 60.0).granted

    def test_s19_2_a_dead_nodes_slot_expires_and_counts_one_window_more(
        self, new_node: NewNode
    ) -> None:
        a, b = new_node("a", ttl=TTL), new_node("b", ttl=TTL)
        assert a.ledger_start("d.example", 1, 2, 5.0).granted  # a dies with it in flight
        assert not b.ledger_start("d.example", 1, 2, 5.0).granted
        wait_for(lambda: b.ledger_start("d.example", 1, 2, 5.0).granted, timeout=5)
        b.ledger_done("d.example", contacted=True)
        # the dead slot ended at its expiry and b's ended now: the window (2) is full
        assert not b.ledger_start("d.example", 1, 2, 5.0).granted

    def test_s19_2_renewal_keeps_a_slot_in_flight(self, new_node: NewNode) -> None:
        a, b = new_node("a", ttl=TTL), new_node("b", ttl=TTL)
        assert a.ledger_start("d.example", 1, 10, 60.0).granted
        deadline = time.monotonic() + 3 * TTL
        while time.monotonic() < deadline:
            a.renew()
            assert not b.ledger_start("d.example", 1, 10, 60.0).granted
            gevent.sleep(TTL / 6)

    def test_s6_4_concurrent_check_and_start_never_overshoots(self, new_node: NewNode) -> None:
        nodes = [new_node(f"n{i}") for i in range(3)]
        jobs = [
            gevent.spawn(nodes[i % 3].ledger_start, "d.example", 4, 100, 60.0) for i in range(24)
        ]
        gevent.joinall(jobs, raise_error=True)
        assert sum(job.value.granted for job in jobs) == 4


class TestMemoryCoordination(CoordinationContract):
    @pytest.fixture()
    def new_node(self) -> NewNode:
        clusters: dict[float, MemoryCluster] = {}

        def make(name: str, ttl: float = 10.0) -> Node:
            cluster = clusters.setdefault(ttl, MemoryCluster(time.monotonic, ttl))
            return cluster.node(name)

        return make


class TestPostgresCoordination(CoordinationContract):
    @pytest.fixture()
    def new_node(self, postgres_database: str) -> Iterator[NewNode]:
        stores: list[PostgresEventStore] = []
        nodes: list[PostgresCoordination] = []

        def make(name: str, ttl: float = 10.0) -> Node:
            store = PostgresEventStore(postgres_database, pool_size=8)
            stores.append(store)
            node = PostgresCoordination(store, f"{name}-{make_node_id()}", ttl=ttl, poll=POLL)
            nodes.append(node)
            return node

        yield make
        for store in stores:
            store.close()

    def test_s19_2_close_gives_everything_back(self, new_node: NewNode) -> None:
        a, b = new_node("a"), new_node("b")
        assert a.take_lease("repo") and a.ledger_start("d.example", 1, 10, 60.0).granted
        a.close()
        assert b.take_lease("repo")
        assert b.ledger_start("d.example", 1, 10, 60.0).granted  # a's slot ended at close

    def test_s19_2_the_heartbeat_greenlet_renews(self, new_node: NewNode) -> None:
        a = new_node("a", ttl=TTL)
        b = new_node("b", ttl=TTL)
        a.renew_interval = TTL / 4
        a.start()
        try:
            assert a.take_lease("repo")
            deadline = time.monotonic() + 3 * TTL
            while time.monotonic() < deadline:
                assert not b.take_lease("repo")
                gevent.sleep(TTL / 6)
        finally:
            a.close()
        assert b.take_lease("repo")

    def test_s19_2_a_node_that_stopped_beating_is_reported_once(self, new_node: NewNode) -> None:
        a = new_node("a")
        now = time.time()
        a.store.heartbeat("old:1", now - 3600)  # stopped long ago: the baseline
        a.store.heartbeat("live:2", now)
        assert a.newly_gone(now) == []  # the first look only takes the baseline
        a.store.heartbeat("dying:3", now - 1)
        assert a.newly_gone(now) == []
        assert a.newly_gone(now + 20) == ["dying:3", "live:2"]  # 15 s without a beat
        assert a.newly_gone(now + 21) == []  # told once
        a.store.heartbeat("live:2", now + 22)  # it came back ...
        assert a.newly_gone(now + 23) == []
        assert a.newly_gone(now + 40) == ["live:2"]  # ... and stopped again

    def test_migration_6_holds_leases_and_ledger(self, postgres_database: str) -> None:
        assert any(m.version == 6 and "lease" in m.name for m in MIGRATIONS)
        with PostgresEventStore(postgres_database) as store, store.connection() as conn:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            }
        assert {"sync_leases", "throttle_slots"} <= tables


def test_s19_2_a_single_process_grants_everything() -> None:
    """SQLite / one process: no other node exists, the actors' local state is the truth."""
    local = LocalCoordination()
    assert local.take_lease("repo") and local.take_lease("repo")
    assert all(local.ledger_start("d.example", 1, 1, 60.0).granted for _ in range(5))


def test_s19_2_node_ids_differ_per_process_start() -> None:
    first, second = make_node_id(), make_node_id()
    assert first != second
    assert first.rsplit("-", 2)[1].isdigit()  # host-pid-random


def test_s19_2_a_slot_the_database_missed_is_given_back_at_the_next_renewal(
    postgres_database: str,
) -> None:
    """Renewal keeps a node's in-flight slots alive, so a lost ``ledger_done`` would hold a
    slot forever: it is owed and paid before the next renewal."""
    with PostgresEventStore(postgres_database, pool_size=4) as store:
        a = PostgresCoordination(store, "a")
        b = PostgresCoordination(store, "b")
        assert a.ledger_start("d.example", 1, 10, 60.0).granted
        real, calls = a._end_slot, []

        def failing(domain: str, contacted: bool) -> None:
            calls.append(domain)
            raise ConnectionError("the database went away")

        a._end_slot = failing  # type: ignore[method-assign]
        with pytest.raises(ConnectionError):
            a.ledger_done("d.example", contacted=True)
        assert not b.ledger_start("d.example", 1, 10, 60.0).granted
        with pytest.raises(ConnectionError):
            a.renew()  # still away: still owed
        a._end_slot = real  # type: ignore[method-assign]
        a.renew()
        assert b.ledger_start("d.example", 1, 10, 60.0).granted
        assert calls == ["d.example", "d.example"]
