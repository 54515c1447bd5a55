"""The pure parts of peers (S17.1, S17.2, S17.4): discovery, health, filters, waiting events."""

from __future__ import annotations

import pytest

from grasp.admission import rules
from grasp.git.url_policy import FetchPolicy
from grasp.nostr.results import Prefix, Result
from grasp.relay.peers.discovery import PeerRefused, normalise_peer_url, peer_url_refusal
from grasp.relay.peers.filters import MAX_LIVE_FILTERS, Hosted, live_filters, stage_filters
from grasp.relay.peers.health import Failure, NaughtyList, PeerHealth
from grasp.relay.peers.waiting import WaitingForParents, missing_parents
from tests.support.nip34 import Key

OPEN = FetchPolicy(allow_private=True)
STRICT = FetchPolicy()

# --- S17.1 discovery -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("wss://Relay.Example/", "wss://relay.example"),
        ("wss://relay.example:443", "wss://relay.example"),
        ("ws://relay.example:80/", "ws://relay.example"),
        ("ws://relay.example:8080/nostr", "ws://relay.example:8080/nostr"),
        ("WS://[::1]:7000", "ws://[::1]:7000"),
    ],
)
def test_s17_1_relay_urls_have_one_spelling(raw, normal):
    assert normalise_peer_url(raw) == normal


@pytest.mark.parametrize(
    "raw",
    ["https://relay.example", "wss://user:pw@relay.example", "wss://r.example/?x=1", "wss://", ""],
)
def test_s17_1_what_is_not_a_relay_url_is_refused_with_a_reason(raw):
    with pytest.raises(PeerRefused):
        normalise_peer_url(raw)


@pytest.mark.parametrize(
    ("url", "domain", "ours"),
    [
        ("wss://relay.example", "relay.example", True),
        ("ws://relay.example", "relay.example", True),  # behind a TLS proxy: either scheme
        ("wss://relay.example:8443", "relay.example", False),
        ("ws://127.0.0.1:7001", "127.0.0.1:7001", True),
        ("ws://127.0.0.1:7002", "127.0.0.1:7001", False),
        ("wss://notrelay.example", "relay.example", False),
        ("wss://relay.example", "RELAY.example", True),
    ],
)
def test_s17_1_never_ourselves_by_host_and_port(url, domain, ours):
    refusal = peer_url_refusal(normalise_peer_url(url), domain, OPEN)
    assert (refusal == "it is this relay (--domain)") is ours


def test_s17_1_loopback_and_private_peers_only_with_allow_private_fetch():
    for url in ("ws://127.0.0.1:7000", "ws://10.0.0.5", "ws://[::1]:7000"):
        refusal = peer_url_refusal(normalise_peer_url(url), "relay.example", STRICT)
        assert refusal is not None and "fetch policy" in refusal
        assert peer_url_refusal(normalise_peer_url(url), "relay.example", OPEN) is None
    assert peer_url_refusal("wss://relay.other.example", "relay.example", STRICT) is None


# --- S17.4 health ----------------------------------------------------------------------------


def test_s17_4_backoff_doubles_from_5_s_to_1_h_and_resets_when_caught_up():
    health = PeerHealth("wss://p.example", NaughtyList())
    delays = [health.failed(Failure.TRANSIENT, "connection refused", 0.0) for _ in range(12)]
    assert delays[:4] == [5.0, 10.0, 20.0, 40.0]
    assert delays[-1] == 3600.0 and max(delays) == 3600.0
    assert health.wait(0.0) == 3600.0 and health.last_error == "connection refused"
    health.caught_up()
    assert health.wait(0.0) == 0.0
    assert health.failed(Failure.TRANSIENT, "lost", 10.0) == 5.0


def test_s17_4_rate_limited_is_a_cool_down_not_a_failure():
    health = PeerHealth("wss://p.example", NaughtyList())
    assert health.failed(Failure.RATE_LIMITED, "CLOSED rate-limited: slow down", 100.0) == 65.0
    assert health.failures == 0 and health.wait(100.0) == 65.0 and health.wait(165.0) == 0.0


def test_s17_4_dns_tls_protocol_failures_put_the_peer_on_the_naughty_list_until_expiry():
    naughty = NaughtyList(secs=12 * 3600)
    health = PeerHealth("wss://gone.example", naughty)
    delay = health.failed(Failure.DNS, "cannot resolve gone.example", 0.0)
    assert delay == 12 * 3600 and naughty.until("wss://gone.example", 1.0) == 12 * 3600
    assert health.last_error == "dns: cannot resolve gone.example"
    assert naughty.until("wss://gone.example", 12 * 3600 + 1) is None  # expired
    assert len(naughty) == 0


def test_s17_4_the_naughty_list_is_bounded():
    naughty = NaughtyList(max_entries=3, secs=100)
    for n in range(10):
        naughty.add(f"wss://p{n}.example", float(n))
    assert len(naughty) == 3
    assert naughty.until("wss://p9.example", 10.0) is not None
    assert naughty.until("wss://p0.example", 10.0) is None  # the one closest to expiry went


# --- S17.2 filters ---------------------------------------------------------------------------


def _hosted(n: int, roots: int = 0) -> Hosted:
    repos = frozenset((f"{i:064x}", f"repo-{i}") for i in range(n))
    return Hosted(repos, frozenset(f"{i:064x}" for i in range(roots)))


def test_s17_2_stages_in_dependency_order_batched_by_100():
    hosted = _hosted(150, roots=3)
    one, two, three = (stage_filters(stage, hosted) for stage in (1, 2, 3))
    assert [f["kinds"] for f in one] == [[30617], [30617], [10317], [10317]]
    assert sum(len(f["#d"]) for f in one if "#d" in f) == 150
    assert [next(iter(f)) for f in two] == ["kinds", "kinds", "#a", "#a", "#A", "#A", "#q", "#q"]
    assert two[2]["#a"][0] == f"30617:{0:064x}:repo-0"
    assert [next(iter(f)) for f in three] == ["#e", "#E", "#q"]
    assert stage_filters(3, _hosted(1)) == []


def test_s17_4_live_filters_stay_under_the_cap_and_name_everything():
    hosted = _hosted(5000, roots=4000)
    live = live_filters(hosted)
    assert len(live) <= MAX_LIVE_FILTERS and all(f["limit"] == 0 for f in live)
    named = {v for f in live if "#a" in f for v in f["#a"]}
    assert len(named) == 5000
    assert len({v for f in live if "#e" in f for v in f["#e"]}) == 4000


# --- S17.2 parent-later ----------------------------------------------------------------------


def test_s17_2_a_state_refused_for_its_missing_announcement_waits_for_it():
    owner = Key()
    state = owner.state("later", {"refs/heads/main": "a" * 40})
    announcement = owner.announcement("later", clone=["http://x/y.git"], relays=["ws://x"])
    assert missing_parents(state, rules.NO_ANNOUNCEMENT) == {"d:later"}
    assert missing_parents(state, Result.reject(Prefix.INVALID, "other")) == frozenset()
    waiting = WaitingForParents(max_events=10, ttl=60)
    waiting.park(state, missing_parents(state, rules.NO_ANNOUNCEMENT), 0.0)
    assert state.id in waiting
    assert waiting.released_by(announcement, 1.0) == [state]
    assert len(waiting) == 0


def test_s17_2_waiting_events_are_bounded_and_expire():
    owner = Key()
    waiting = WaitingForParents(max_events=3, ttl=60)
    states = [owner.state(f"r{n}", {"refs/heads/main": "b" * 40}) for n in range(5)]
    for n, state in enumerate(states):
        waiting.park(state, {f"d:r{n}"}, float(n))
    assert len(waiting) == 3 and states[0].id not in waiting
    waiting.expire(63.5)  # parked at 2, 3, 4 s: the first two expired
    assert len(waiting) == 1 and states[4].id in waiting


def test_s17_4_failures_are_told_apart():
    import socket
    import ssl

    import websocket

    from grasp.git.errors import FetchError
    from grasp.relay.peers.link import PeerGarbage, RateLimited
    from grasp.relay.peers.peer import classify

    assert classify(RateLimited("CLOSED rate-limited: x")) is Failure.RATE_LIMITED
    assert classify(socket.gaierror(-2, "Name or service not known")) is Failure.DNS
    assert classify(FetchError("http://x/", "dns", "cannot resolve x")) is Failure.DNS
    assert classify(FetchError("http://x/", "policy", "10.0.0.1 is private")) is Failure.POLICY
    assert classify(ssl.SSLError("bad certificate")) is Failure.TLS
    assert classify(PeerGarbage("20 frames")) is Failure.PROTOCOL
    assert classify(websocket.WebSocketBadStatusException("%s %s", 404, "Not Found")) is (
        Failure.PROTOCOL
    )
    assert classify(ConnectionRefusedError()) is Failure.TRANSIENT
