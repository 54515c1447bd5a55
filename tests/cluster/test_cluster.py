"""A cluster of three relay processes on one PostgreSQL database (S19.2), started by the CLI
with the same ``--database``, ``--data-dir`` and ``--domain``, each on its own port.

- fan-out: an event published to node 1 is in REQ answers of nodes 2 and 3 and reaches a live
  subscriber of node 3 within 2 s; node 1's own subscriber gets it once;
- pushes: a state held by node 1 is released by a push through node 2, and node 3's live
  subscriber gets it;
- one truth: a state sent to node 2 is judged against an announcement held by node 1.
"""

from __future__ import annotations

import pytest

from tests.cluster.nodes import DOMAIN, HELD, announcement, git_url, push
from tests.support.gitrepo import RepoBuilder, for_each_ref
from tests.support.nip34 import Key
from tests.support.relay import RelayClient, accepted_repository, issue
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

#: S19.2: live subscribers on every node get a stored event within this many seconds.
FANOUT_SECS = 2.0


@pytest.fixture
def clients():
    opened: list[RelayClient] = []

    def connect(node, timeout: float = 5.0) -> RelayClient:
        opened.append(RelayClient(node.ws_url, timeout))
        return opened[-1]

    yield connect
    for client in opened:
        client.close()


def _live(client: RelayClient, sub_id: str, flt: dict) -> None:
    client.send("REQ", sub_id, flt)
    assert client.recv() == ["EOSE", sub_id]


def _next_event(client: RelayClient, sub_id: str) -> dict:
    frame = client.expect("EVENT")
    assert frame[1] == sub_id, frame
    return frame[2]


def test_s19_2_event_stored_by_one_node_reaches_req_and_live_subscribers_on_every_node(
    cluster, clients
):
    one, two, three = cluster(3)
    key = Key()
    watcher3, watcher1 = clients(three, FANOUT_SECS), clients(one, FANOUT_SECS)
    for watcher in (watcher1, watcher3):
        _live(watcher, "live", {"kinds": [1621], "authors": [key.pubkey]})
    publisher = clients(one)
    repo = accepted_repository(publisher, DOMAIN, key.secret, "fan")
    first = issue(repo, key.secret)
    assert publisher.publish(first)[2] is True
    # within FANOUT_SECS (the watcher's receive timeout) on the other node ...
    assert _next_event(watcher3, "live")["id"] == first.id
    for node in (two, three):
        assert [e["id"] for e in clients(node).req("r", {"ids": [first.id]})] == [first.id]
    # ... and exactly once on the node that stored it: a second issue, published to node 2,
    # comes after node 1's own notification went round, and must be the next frame.
    second = issue(repo, key.secret)
    assert clients(two).publish(second)[2] is True
    assert _next_event(watcher1, "live")["id"] == first.id
    assert _next_event(watcher1, "live")["id"] == second.id
    assert _next_event(watcher3, "live")["id"] == second.id


def test_s19_2_state_held_by_node_1_is_released_by_a_push_through_node_2(
    cluster, clients, tmp_path
):
    """S19.2 pushes: node 2 authorises the push against the state node 1 holds, and the
    release reaches node 3's live subscriber."""
    one, two, three = cluster(3)
    key, d = Key(), "pushed"
    watcher = clients(three, 10.0)
    _live(watcher, "states", {"kinds": [30618], "authors": [key.pubkey]})
    sender = clients(one)
    assert sender.publish(announcement(key, d))[2:] == [True, HELD]
    work = RepoBuilder.create(tmp_path / "work.git")
    main = work.commit(branch="main")
    state = key.state(d, {"refs/heads/main": main})
    assert sender.publish(state)[2:] == [True, HELD]
    pushed = push(work.path, git_url(two, key, d), "main:main")
    assert pushed.returncode == 0, pushed.stderr
    assert _next_event(watcher, "states")["id"] == state.id
    for node in (one, two, three):
        client = clients(node)
        wait_for(lambda c=client: c.req("s", {"ids": [state.id]}), message="state served")
    assert for_each_ref(one.data_dir / "repos" / npub(key) / f"{d}.git") == {
        "refs/heads/main": main
    }


def test_s19_2_state_sent_to_node_2_is_judged_against_an_announcement_held_by_node_1(
    cluster, clients
):
    one, two = cluster(2)
    key, stranger, d = Key(), Key(), "judged"
    assert clients(one).publish(announcement(key, d))[2:] == [True, HELD]
    at_two = clients(two)
    assert at_two.publish(key.state(d, {"refs/heads/main": "a" * 40}))[2:] == [True, HELD]
    refused = at_two.publish(stranger.state(d, {"refs/heads/main": "b" * 40}))
    assert refused[2] is False and refused[3].startswith("invalid: "), refused


def npub(key: Key) -> str:
    from grasp.nostr.bech32 import npub_encode

    return npub_encode(key.pubkey)
