"""The peer network in-process (S17.1, S17.2): a real SQLite store, the plain store policy, and
``MiniNip77Relay`` as the peer (websockets on 127.0.0.1)."""

from __future__ import annotations

import pytest

from grasp.admission.intake import EventSource, StoreWritePolicy
from grasp.git.url_policy import FetchPolicy
from grasp.nostr.event import sign_event
from grasp.nostr.filters import Filter
from grasp.relay.peers.health import Failure
from grasp.relay.peers.network import PeerNetwork, PeerSettings
from grasp.relay.peers.peer import RESUME_WINDOW_SECS
from grasp.relay.peers.session import SessionLimits
from grasp.relay.sync_sources.settings import SyncSourceSettings
from grasp.store.sqlite import SqliteEventStore
from tests.support.nip34 import Key
from tests.support.nip77_relay import MiniNip77Relay
from tests.support.wait import wait_for

DOMAIN = ("relay.example",)


@pytest.fixture()
def store(tmp_path):
    with SqliteEventStore(tmp_path / "events.sqlite3") as store:
        yield store


def network(store, **settings) -> PeerNetwork:
    options = {"domains": DOMAIN, **settings}
    return PeerNetwork(
        StoreWritePolicy(store, lambda event: None),
        store,
        PeerSettings(**options),
        FetchPolicy(allow_private=True),
        SyncSourceSettings(),
        limits=SessionLimits(neg_timeout=2.0),
    )


def repository(key: Key, relays: list[str]):
    announcement = key.announcement("net", clone=["https://git.example/x.git"], relays=relays)
    issue = sign_event(key.secret, 1621, [["a", f"30617:{key.pubkey}:net"]], "first")
    return announcement, issue


def test_s17_1_an_accepted_announcement_makes_its_relays_peers_except_ourselves(store):
    key = Key()
    peers = network(store)
    announcement, _ = repository(
        key, ["wss://relay.example", "wss://other.example/", "ftp://nope", "wss://Other.Example"]
    )
    assert peers(announcement, EventSource.CLIENT).accepted
    assert list(peers.peers) == ["wss://other.example"]
    assert [row.url for row in store.load_peers()] == ["wss://other.example"]  # persisted


def test_s17_1_no_discover_relays_keeps_only_bootstrap_relays(store):
    key = Key()
    peers = network(store, discover=False, bootstrap=("wss://boot.example",))
    peers.load()
    announcement, _ = repository(key, ["wss://other.example"])
    assert peers(announcement, EventSource.CLIENT).accepted
    assert list(peers.peers) == ["wss://boot.example"]


def test_s17_1_peers_of_an_earlier_run_are_loaded_with_their_health(store):
    first = network(store)
    first.discover(["wss://other.example"], "announcement")
    peer = first.peers["wss://other.example"]
    peer.health.failed(Failure.DNS, "cannot resolve", first.clock())
    first.persist(peer)
    second = network(store)
    second.load()
    again = second.peers["wss://other.example"]
    assert again.health.last_error == "dns: cannot resolve"
    assert again.health.wait(second.clock()) > 11 * 3600  # still on the naughty list


def test_s17_2_periodic_reconciliation_copies_what_the_peer_gained_since(store):
    key = Key()
    with MiniNip77Relay() as relay:
        announcement, issue = repository(key, [relay.url])
        relay.events.update({announcement.id: announcement, issue.id: issue})
        peers = network(store, reconcile_interval=1.0)
        assert peers(announcement, EventSource.CLIENT).accepted  # hosted here; relay is a peer
        peers.start()
        try:
            wait_for(lambda: store.contains(issue.id), timeout=10, message="the first walk")
            opened = relay.verbs["NEG-OPEN"]
            later = sign_event(key.secret, 1621, [["a", f"30617:{key.pubkey}:net"]], "later")
            relay.events[later.id] = later  # the peer gained it; nothing is broadcast live
            wait_for(lambda: store.contains(later.id), timeout=10, message="the next walk")
            assert relay.verbs["NEG-OPEN"] > opened
            status = peers.status()[0]
            assert status.nip77 is True and status.last_reconciled_at is not None
        finally:
            assert peers.stop()
    assert store.query([Filter(ids=frozenset({issue.id, later.id}))])


def test_s17_2_a_short_disconnect_resumes_with_since_a_long_one_walks_everything(store):
    now = [1_800_000_000.0]
    peers = network(store)
    peers.clock = lambda: now[0]
    peers.discover(["wss://other.example"], "bootstrap")
    peer = peers.peers["wss://other.example"]
    assert peer._since() is None  # never live: the whole history
    peer._on_live(sign_event(Key().secret, 1621, [], "x", int(now[0]) - 10))
    assert peer._since() == int(now[0]) - 10 - 300  # the overlap
    now[0] += RESUME_WINDOW_SECS + 1
    assert peer._since() is None


def test_s17_1_a_full_peer_set_makes_room_by_dropping_a_naughty_discovered_peer(store, monkeypatch):
    import grasp.relay.peers.network as network_module

    monkeypatch.setattr(network_module, "MAX_PEERS", 3)
    peers = network(store)
    peers.discover(["wss://a.example", "wss://b.example", "wss://c.example"], "announcement")
    assert peers.discover(["wss://d.example"], "announcement") == []  # full, nobody naughty
    bad = peers.peers["wss://b.example"]
    bad.health.failed(Failure.DNS, "cannot resolve b.example", peers.clock())
    assert peers.discover(["wss://d.example"], "announcement") == ["wss://d.example"]
    assert sorted(peers.peers) == ["wss://a.example", "wss://c.example", "wss://d.example"]
