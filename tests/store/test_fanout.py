"""Cluster fan-out (S19.2, grasp/store/fanout.py): batched id payloads, no echo to the sender,
and a listener that comes back after its connection was killed."""

from __future__ import annotations

import psycopg
import pytest

from grasp.nostr.event import generate_secret_key, sign_event
from grasp.store import open_store
from grasp.store.fanout import MAX_PAYLOAD, ClusterFanout, parse_payload, payloads
from tests.support.wait import wait_for

SECRET = generate_secret_key()


def test_s19_2_payloads_stay_under_the_notify_limit_and_carry_every_id():
    ids = [f"{n:064x}" for n in range(300)]
    texts = list(payloads("host:7777", ids))
    assert len(texts) == 3 and all(len(t.encode()) <= MAX_PAYLOAD for t in texts)
    parsed = [parse_payload(t) for t in texts]
    assert {node for node, _ in parsed} == {"host:7777"}
    assert [i for _, batch in parsed for i in batch] == ids
    assert parse_payload("garbage") == ("", [])
    assert parse_payload("n|short,ids") == ("n", [])


@pytest.fixture
def two_nodes(postgres_database):
    store = open_store(postgres_database, pool_size=4)
    got: dict[str, list[str]] = {"a": [], "b": []}
    nodes = {
        name: ClusterFanout(
            postgres_database, name, store, lambda e, n=name: got[n].append(e.id) or 1
        )
        for name in ("a", "b")
    }
    for node in nodes.values():
        node.start()
    for node in nodes.values():
        assert node.listening.wait(10)
    yield nodes, got, store, postgres_database
    for node in nodes.values():
        node.stop()
    store.close()


def _stored(store, content: str):
    event = sign_event(SECRET, 1, [], content)
    assert store.save(event).stored
    return event


def test_s19_2_an_event_reaches_the_other_node_once_and_never_echoes(two_nodes):
    nodes, got, store, _ = two_nodes
    first = _stored(store, "one")
    nodes["a"].publish(first)
    wait_for(lambda: got["b"] == [first.id], 5, message="node b to get the event")
    second = _stored(store, "two")
    nodes["b"].publish(second)  # b's own payload comes back to b after a's, if at all
    wait_for(lambda: got["a"] == [first.id, second.id], 5, message="node a to get b's event")
    assert got["b"] == [first.id, second.id]  # its own once (local), a's once: no echo
    burst = [_stored(store, f"burst {n}") for n in range(250)]  # several payloads
    for event in burst:
        nodes["a"].publish(event)
    wait_for(lambda: len(got["b"]) == 252, 10, message="the burst on node b")
    assert set(got["b"][2:]) == {e.id for e in burst}


def test_s19_2_the_listener_reconnects_after_its_connection_was_killed(two_nodes):
    nodes, got, store, url = two_nodes
    with psycopg.connect(url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
        ).fetchone()
    assert killed is not None and killed[0] == 2
    # reopened (backoff from 0.1 s); what was sent in the gap is lost for live subscribers
    wait_for(lambda: nodes["b"].listens == 2, 10, message="node b listening again")
    event = _stored(store, "after the outage")
    nodes["a"].publish(event)
    wait_for(lambda: event.id in got["b"], 10, message="the event after the reconnect")
