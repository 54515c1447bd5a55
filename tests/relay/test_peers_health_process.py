"""A relay process and peers that are not relays of this project (S17.2, S17.3, S17.4).

The peers are test servers in this process: ``MiniNip77Relay`` (NIP-01 plus our NIP-77
responder), a peer that rate-limits, one that sends garbage, an address nothing listens on and
a name that never resolves. The relay under test is the real ``grasp-relay`` process, told about
them with ``--bootstrap-relay``.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import Event, sign_event
from grasp.relay.peers.discovery import normalise_peer_url
from tests.support.gitrepo import RepoBuilder
from tests.support.gitserver import GitServer
from tests.support.nip34 import Key
from tests.support.nip77_relay import MiniNip77Relay
from tests.support.relay import RelayClient, RelayProcess, accepted_repository
from tests.support.sdk_thread import SdkThread, local_relay
from tests.support.wait import wait_for
from tests.support.wsserver import Send, TextSocketServer

pytestmark = pytest.mark.slow
FAST = (
    "--allow-private-fetch",
    "--sync-immediate-delay-ms",
    "100",
    "--sync-loop-interval-ms",
    "200",
)


def peers_of(relay: RelayProcess) -> dict[str, dict]:
    with urllib.request.urlopen(f"{relay.http_url}/status.json", timeout=5) as response:
        return {p["url"]: p for p in json.load(response)["peers"]["peers"]}


def issues(repo: Event, key: Key, count: int, first: int = 0) -> list[Event]:
    coordinate = f"30617:{repo.pubkey}:{repo.d}"
    return [
        sign_event(key.secret, 1621, [["a", coordinate]], f"issue {n}", 1_700_000_000 + n)
        for n in range(first, first + count)
    ]


def hosting_relay(data_dir: Path, key: Key, identifier: str, known: list[Event] = ()):
    """Start a relay, get ``identifier`` hosted and ``known`` events stored, stop it."""
    relay = RelayProcess(data_dir, *FAST).start()
    try:
        client = RelayClient(relay.ws_url)
        repo = accepted_repository(client, f"127.0.0.1:{relay.port}", key.secret, identifier)
        for event in known:
            assert client.publish(event)[2] is True
        client.close()
        return repo, relay.port
    finally:
        relay.stop()


def test_s17_3_reconciles_with_a_nip77_peer_and_asks_only_for_the_difference(tmp_path):
    owner = Key()
    port_holder: list[int] = []
    # B hosts the repository and already has 50 of the 60 issues the peer has.
    probe = RelayProcess(tmp_path / "b", *FAST).start()
    client = RelayClient(probe.ws_url)
    repo = accepted_repository(client, f"127.0.0.1:{probe.port}", owner.secret, "diff")
    every = issues(repo, owner, 60)
    for event in every[:50]:
        assert client.publish(event)[2] is True
    client.close()
    port_holder.append(probe.port)
    probe.stop()
    with MiniNip77Relay([repo, *every]) as peer:
        b = RelayProcess(
            tmp_path / "b", *FAST, "--bootstrap-relay", peer.url, port=port_holder[0]
        ).start()
        try:
            to_b = RelayClient(b.ws_url)
            wait_for(
                lambda: len(to_b.req("all", {"#a": [f"30617:{repo.pubkey}:diff"]})) == 60,
                timeout=20,
                message=lambda: f"B has all 60 issues; log:\n{b.log[-4000:]}",
            )
            assert peer.verbs["NEG-OPEN"] >= 1
            assert peer.requested_ids == 10  # only the difference was asked for, by id
            # The peer turns live once the reconciliation has ended, after its last event was
            # stored: on PostgreSQL the REQ above can see all 60 before that instant.
            url = normalise_peer_url(peer.url)
            wait_for(
                lambda: peers_of(b)[url]["state"] != "connected",
                timeout=10,
                message=lambda: f"the peer leaves 'connected'; log:\n{b.log[-4000:]}",
            )
            status = peers_of(b)[url]
            assert status["nip77"] is True and status["state"] == "live (NIP-77)"
            print(f"\nNIP-77: 60 events at the peer, 50 here, {peer.requested_ids} asked for")
            to_b.close()
        finally:
            b.stop()


class _RateLimiting:
    """Answers every REQ with ``CLOSED rate-limited:`` (and NEG-OPEN with a NOTICE)."""

    def __init__(self, send: Send) -> None:
        self.send = send

    def on_text(self, text: str) -> None:
        frame = json.loads(text)
        if frame[0] == "REQ":
            self.send(json.dumps(["CLOSED", frame[1], "rate-limited: slow down"]))

    def on_close(self) -> None:
        pass


class _Garbage:
    """Answers anything with frames that are not NIP-01 messages."""

    def __init__(self, send: Send) -> None:
        self.send = send

    def on_text(self, text: str) -> None:
        for n in range(30):
            self.send(f"<html>{n} this is not nostr")

    def on_close(self) -> None:
        pass


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_s17_4_failing_peers_each_get_their_answer_and_the_relay_and_good_peer_carry_on(
    tmp_path,
):
    owner = Key()
    repo, port = hosting_relay(tmp_path / "b", owner, "healthy")
    wanted = issues(repo, owner, 3)
    refused = f"ws://127.0.0.1:{_closed_port()}"
    dns = "ws://no-such-peer.invalid"
    with (
        MiniNip77Relay([repo, *wanted]) as good,
        TextSocketServer(_RateLimiting) as limiting,
        TextSocketServer(_Garbage) as garbage,
    ):
        peers = [dns, refused, limiting.url, garbage.url, good.url]
        flags = [arg for url in peers for arg in ("--bootstrap-relay", url)]
        b = RelayProcess(tmp_path / "b", *FAST, *flags, port=port).start()
        try:
            to_b = RelayClient(b.ws_url)
            wait_for(
                lambda: len(to_b.req("x", {"ids": [e.id for e in wanted]})) == 3,
                timeout=20,
                message=lambda: f"the good peer's issues arrive; log:\n{b.log[-4000:]}",
            )

            # Each failing peer's answer, awaited one by one: under load a peer's first attempt
            # may end otherwise (a handshake past the connect timeout is a transient failure,
            # retried after 5 s, S17.4), so the first error seen need not be the final answer.
            answers = {
                normalise_peer_url(dns): lambda e: e.startswith("dns: "),
                normalise_peer_url(refused): lambda e: e == "connection refused",
                normalise_peer_url(limiting.url): lambda e: "rate-limited: slow down" in e,
                normalise_peer_url(garbage.url): lambda e: e.startswith("protocol: "),
            }

            good_url = normalise_peer_url(good.url)

            def all_failed() -> dict[str, dict] | None:
                """Every failing peer has its answer and the good peer is live: it turns live once
                its reconciliation ended, after its last event was stored, and on PostgreSQL the REQ
                above can see the events before that (as in S17.3's test)."""
                seen = peers_of(b)
                answered = all(ok(seen[u]["last_error"] or "") for u, ok in answers.items())
                live = seen[good_url]["state"].startswith("live")
                return seen if answered and live else None

            seen = wait_for(all_failed, timeout=20, message=lambda: f"{peers_of(b)}")
            by_name = {
                "dns": seen[normalise_peer_url(dns)],
                "refused": seen[normalise_peer_url(refused)],
                "rate-limited": seen[normalise_peer_url(limiting.url)],
                "garbage": seen[normalise_peer_url(garbage.url)],
            }
            assert by_name["dns"]["state"] == "naughty"
            assert by_name["dns"]["last_error"].startswith("dns: ")
            assert by_name["refused"]["state"] == "backing off"
            assert by_name["refused"]["last_error"] == "connection refused"
            assert by_name["refused"]["next_attempt_at"] is not None
            assert by_name["rate-limited"]["state"] == "backing off"
            assert "rate-limited: slow down" in by_name["rate-limited"]["last_error"]
            assert by_name["rate-limited"]["failures"] == 0  # a cool-down, not a fault
            assert by_name["garbage"]["state"] == "naughty"
            assert by_name["garbage"]["last_error"].startswith("protocol: ")
            assert seen[good_url]["state"].startswith("live")
            # the relay is healthy: it still answers REQ
            # on a new connection: REQ "x" above stays live after EOSE (NIP-01), and on
            # PostgreSQL an issue its query returned can also reach it live a moment later
            to_b.close()
            probe = RelayClient(b.ws_url)
            assert probe.req("y", {"ids": [repo.id]})
            probe.close()
        finally:
            b.stop()
    # health persists: the naughty peers are still known as such after a restart
    again = RelayProcess(tmp_path / "b", *FAST, port=port).start()
    try:
        after = peers_of(again)
        assert after[normalise_peer_url(dns)]["last_error"].startswith("dns: ")
        assert after[normalise_peer_url(garbage.url)]["state"] in ("naughty", "stopped")
    finally:
        again.stop()


def test_s17_2_a_state_that_arrives_before_its_announcement_is_released_after_it(tmp_path):
    owner, other = Key(), Key()
    repo, port = hosting_relay(tmp_path / "b", owner, "shared")
    work = RepoBuilder.create(tmp_path / "git" / "other.git")
    tip = work.chain(2, branch="main")[-1]
    state = other.state("shared", {"refs/heads/main": tip})  # by a key B knows nothing of
    with GitServer(tmp_path / "git") as git_server, MiniNip77Relay([repo, state]) as peer:
        b = RelayProcess(tmp_path / "b", *FAST, "--bootstrap-relay", peer.url, port=port).start()
        try:
            b.wait_for_log(r"peer \S+: caught up", timeout=20)
            probe = RelayClient(b.ws_url)
            assert not probe.req("s", {"ids": [state.id]})  # refused: no announcement of its own
            probe.close()
            to_b = RelayClient(b.ws_url)
            npub = npub_encode(other.pubkey)
            announcement = other.announcement(
                "shared",
                clone=[f"http://127.0.0.1:{port}/{npub}/shared.git", git_server.url("other.git")],
                relays=[f"ws://127.0.0.1:{port}"],
            )
            assert to_b.publish(announcement)[2] is True  # the parent arrives, from a client
            wait_for(
                lambda: to_b.req("s2", {"ids": [state.id]}),
                timeout=20,
                message=lambda: f"B releases the waiting state; log:\n{b.log[-4000:]}",
            )
            b.wait_for_log(rf"1 events waited for {announcement.id}; offering them again")
            to_b.close()
        finally:
            b.stop()


def test_s17_3_reconciles_with_nostr_sdk_local_relay_an_independent_nip77_peer(tmp_path):
    """rust-nostr's relay (rust-negentropy answering NEG-OPEN) as the peer of the real process."""
    owner = Key()
    probe = RelayProcess(tmp_path / "b", *FAST).start()
    client = RelayClient(probe.ws_url)
    repo = accepted_repository(client, f"127.0.0.1:{probe.port}", owner.secret, "rusty")
    every = issues(repo, owner, 40)
    for event in every[:30]:
        assert client.publish(event)[2] is True
    client.close()
    port = probe.port
    probe.stop()
    with SdkThread() as sdk, local_relay(sdk) as url:
        feeder = RelayClient(url)
        for event in [repo, *every]:
            assert feeder.publish(event)[2] is True
        feeder.close()
        b = RelayProcess(tmp_path / "b", *FAST, "--bootstrap-relay", url, port=port).start()
        try:
            to_b = RelayClient(b.ws_url)
            wait_for(
                lambda: len(to_b.req("all", {"#a": [f"30617:{repo.pubkey}:rusty"]})) == 40,
                timeout=30,
                message=lambda: f"B has all 40 issues; log:\n{b.log[-4000:]}",
            )
            # the history walk ends after its last event is stored: poll for the state too
            wait_for(
                lambda: peers_of(b)[normalise_peer_url(url)]["state"] == "live (NIP-77)",
                timeout=10,
                message=lambda: f"peer live by NIP-77: {peers_of(b)[normalise_peer_url(url)]}",
            )
            status = peers_of(b)[normalise_peer_url(url)]
            assert status["nip77"] is True, status
            to_b.close()
        finally:
            b.stop()
