"""Sync sources (S10.7; S4.2 and S1.4 through EventSource.SYNC) over real websockets on 127.0.0.1.

The source is either a real in-process relay (``open_relay``: plain NIP-01, stores everything,
clamps ``limit``) or a :class:`ScriptedSource` — the relay's own websocket server running a
script instead of NIP-01, to play a misbehaving or flaky source. The write policy is a recording
callable; some tests give it the dependency rules of the GRASP policy (S10.4) in miniature.
"""

from __future__ import annotations

import gc
import json
import random
import re
import socket
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import gevent
import gevent.event
import greenlet
import pytest
import websocket

from grasp.admission.intake import EventSource
from grasp.admission.write_policy import GraspWritePolicy
from grasp.nostr import kinds
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import Event
from grasp.nostr.nip34 import RepositoryState
from grasp.nostr.results import Prefix, Result
from grasp.purgatory import PurgatoryStore
from grasp.purgatory import Source as PurgatorySource
from grasp.relay.config import Config
from grasp.relay.sync_sources.history import HistorySync, dependency_key, offer_in_order
from grasp.relay.sync_sources.settings import SyncSourceSettings
from grasp.relay.sync_sources.source import (
    LIVE_SUB,
    PAGE_SUB_PREFIX,
    YIELD_EVERY,
    SyncSource,
    SyncSources,
)
from grasp.relay.sync_sources.wire import BoundedWebSocket, MessageSkipped
from grasp.relay.transport.http import RelayApp
from grasp.relay.transport.server import Relay
from grasp.relay.transport.websocket import RelayWSGIServer, accept_token
from grasp.repositories import RepositoryIndex
from grasp.store.sqlite import EventStore
from tests.relay.conftest import Client, signed
from tests.support.nip34 import Key
from tests.support.plain_relay import open_relay
from tests.support.wait import wait_for

T = 1_700_000_000


class Recorder:
    """A write policy that records every offer; ``decide`` answers (accept all by default)."""

    def __init__(self, decide: Callable[[Event], Result] | None = None) -> None:
        self.offered: list[tuple[Event, EventSource]] = []
        self.decide = decide or (lambda event: Result.ok())

    def __call__(self, event: Event, source: EventSource) -> Result:
        self.offered.append((event, source))
        return self.decide(event)

    @property
    def ids(self) -> list[str]:
        return [event.id for event, _ in self.offered]


def dependency_rules() -> Callable[[Event], Result]:
    """S10.4 in miniature: a state needs its author's announcement, other kinds an accepted
    announcement (``a``) or event (``e``)."""
    accepted: set[str] = set()

    def decide(event: Event) -> Result:
        d = next((tag[1] for tag in event.tags if tag[0] == "d"), "")
        if event.kind == kinds.REPO_ANNOUNCEMENT:
            accepted.add(f"{kinds.REPO_ANNOUNCEMENT}:{event.pubkey}:{d}")
            return Result.ok()
        needs = (
            {f"{kinds.REPO_ANNOUNCEMENT}:{event.pubkey}:{d}"}
            if event.kind == kinds.REPO_STATE
            else {tag[1] for tag in event.tags if tag[0] in ("a", "e")}
        )
        if needs & accepted:
            accepted.add(event.id)
            return Result.ok()
        return Result.reject(Prefix.INVALID, "references nothing accepted")

    return decide


# --- sources -------------------------------------------------------------------------------------


@pytest.fixture
def source_relay(tmp_path: Path) -> Iterator[Callable[..., Relay]]:
    """``source_relay(port=0, max_limit=500, name="a")``: a started in-process NIP-01 relay."""
    relays: list[Relay] = []

    def start(port: int = 0, max_limit: int = 500, name: str = "a") -> Relay:
        config = Config(host="127.0.0.1", port=port, data_dir=tmp_path / name, max_limit=max_limit)
        relays.append(open_relay(config))
        relays[-1].start()
        return relays[-1]

    yield start
    for relay in relays:
        if relay.server.started:
            relay.shutdown(timeout=2)


def ws_url(relay: Relay) -> str:
    return f"ws://127.0.0.1:{relay.port}/"


def seed(relay: Relay, *events: Event) -> None:
    for event in events:
        assert relay.store.save(event).stored


class _Peer:
    """One connection to a ScriptedSource (a MessageListener of the relay's websocket layer)."""

    def __init__(self, source: ScriptedSource, connection, number: int) -> None:
        self.source, self.connection, self.number = source, connection, number

    def send(self, *frame: object) -> None:
        self.connection.send(json.dumps(list(frame)))

    def send_text(self, text: str) -> None:
        self.connection.send(text)

    def close(self) -> None:
        self.connection.close(1001, "scripted close")

    def on_text(self, text: str) -> None:
        frame = json.loads(text)
        self.source.received.append((self.number, frame))
        if frame[0] == "REQ":
            self.source.on_req(self, frame)

    def on_binary(self, data: bytes) -> None:
        pass

    def on_close(self) -> None:
        pass

    def farewell(self, reason: str) -> str | None:
        return None


class ScriptedSource:
    """A source that answers each REQ with ``on_req(peer, frame)`` rather than NIP-01 rules."""

    def __init__(self, on_req: Callable[[_Peer, list], None]) -> None:
        self.on_req = on_req
        self.received: list[tuple[int, list]] = []
        self.connections = 0
        app = RelayApp(info={"name": "scripted source"}, session_factory=self._peer)
        self.server = RelayWSGIServer(("127.0.0.1", 0), app)
        self.server.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.server_port}/"

    def requests(self) -> list[tuple[int, list]]:
        return [(n, frame) for n, frame in self.received if frame[0] == "REQ"]

    def _peer(self, connection) -> _Peer:
        self.connections += 1
        return _Peer(self, connection, self.connections)

    def close(self) -> None:
        for connection in self.server.websocket_connections:
            connection.close(1001, "bye")
        self.server.websocket_connections.wait_empty(2)
        self.server.stop(timeout=2)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedSource]]:
    servers: list[ScriptedSource] = []

    def start(on_req: Callable[[_Peer, list], None]) -> ScriptedSource:
        servers.append(ScriptedSource(on_req))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def sync() -> Iterator[Callable[..., SyncSource]]:
    """``sync(url, policy, clock=..., sleep=..., **settings)``: a started SyncSource with those
    SyncSourceSettings, stopped (and checked) at teardown."""
    started: list[SyncSource] = []

    def start(
        url: str,
        policy: Callable,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = gevent.sleep,
        **settings,
    ) -> SyncSource:
        started.append(
            SyncSource(url, SyncSourceSettings(**settings), policy, clock=clock, sleep=sleep)
        )
        started[-1].start()
        return started[-1]

    yield start
    for source in started:
        assert source.stop(timeout=2), f"{source} did not stop"


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- historic, then live -------------------------------------------------------------------------


def test_history_then_live_events_are_fed_as_synced(source_relay, sync):
    """S10.7: stored events of the NIP-34 kinds arrive, then one published after we connected
    arrives within a second; every one goes to the write policy as EventSource.SYNC (S4.2)."""
    relay = source_relay()
    history = [
        signed(kind=kind, created_at=T + i)
        for i, kind in enumerate(
            (kinds.ISSUE, kinds.PATCH, 1630, kinds.REPO_STATE, kinds.REPO_ANNOUNCEMENT)
        )
    ]
    seed(relay, *history, signed(kind=1, created_at=T))  # kind 1 is not asked for
    recorder = Recorder()
    source = sync(ws_url(relay), recorder)

    wait_for(lambda: source.status().caught_up, message="history walk")
    assert sorted(recorder.ids) == sorted(e.id for e in history)

    live = signed(kind=kinds.ISSUE)
    client = Client(ws_url(relay))
    try:
        assert client.publish(live)[2] is True
        wait_for(lambda: live.id in recorder.ids, timeout=1.0, message="live event")
    finally:
        client.close()
    assert {src for _, src in recorder.offered} == {EventSource.SYNC}
    status = source.status()
    assert (status.state, status.events_received, status.events_accepted) == ("connected", 6, 6)
    assert status.events_invalid == status.reconnects == 0
    assert status.connected_since is not None and status.last_event_at is not None
    assert status.to_json()["url"] == ws_url(relay) and status.to_json()["last_error"] is None


def test_history_is_paged_beyond_the_source_limit_and_fed_once(source_relay, sync):
    """A source clamps limit (S10.1: ours to 500); we page with ``until`` until a page brings
    nothing new. Events sharing a second across a page boundary are fed exactly once."""
    relay = source_relay(max_limit=3)
    events = [
        signed(kind=kinds.ISSUE, created_at=T + i // 2) for i in range(11)
    ]  # pairs per second
    seed(relay, *events)
    recorder = Recorder()
    source = sync(ws_url(relay), recorder)
    wait_for(lambda: source.status().caught_up, message="history walk")
    assert sorted(recorder.ids) == sorted(e.id for e in events)
    assert [e.created_at for e, _ in recorder.offered] == sorted(e.created_at for e in events)


def test_history_is_fed_in_dependency_order(source_relay, sync):
    """Announcement, then state, then thread starters, then replies, each oldest first — even
    when timestamps say otherwise and the dependencies sit on different pages (S10.4)."""
    relay = source_relay(max_limit=2)
    owner = Key()
    address = f"{kinds.REPO_ANNOUNCEMENT}:{owner.pubkey}:repo"
    announcement = owner.announcement("repo", created_at=T + 100)  # re-published: the newest
    state = owner.state("repo", {"refs/heads/main": "a" * 40}, created_at=T + 10)
    issue = signed(kind=kinds.ISSUE, tags=[["a", address]], created_at=T + 20)
    patch = signed(kind=kinds.PATCH, tags=[["a", address]], created_at=T + 30)
    status = signed(kind=1630, tags=[["e", issue.id]], created_at=T + 5)  # skewed clock
    seed(relay, announcement, state, issue, patch, status)
    recorder = Recorder(dependency_rules())
    source = sync(ws_url(relay), recorder)

    wait_for(lambda: source.status().caught_up, message="history walk")
    assert recorder.ids == [announcement.id, state.id, issue.id, patch.id, status.id]
    assert (source.status().events_accepted, source.status().events_rejected) == (5, 0)


def test_maintainer_announcement_is_offered_again_after_the_owners(source_relay, sync):
    """S10.3/S10.4: a maintainer's announcement is accepted only once the owner's (which lists
    the maintainer) is; it is older here, so the first pass refuses it and the next accepts it."""
    relay = source_relay()
    owner, maintainer = Key(), Key()
    theirs = maintainer.announcement("repo", created_at=T)
    ours = owner.announcement("repo", maintainers=[maintainer.pubkey], created_at=T + 50)
    seed(relay, theirs, ours)
    accepted: set[str] = set()

    def decide(event: Event) -> Result:
        if event.pubkey == owner.pubkey or owner.pubkey in accepted:
            accepted.add(event.pubkey)
            return Result.ok()
        return Result.reject(
            Prefix.BLOCKED, "announcement must list this relay"
        )  # as S10.4's policy

    recorder = Recorder(decide)
    source = sync(ws_url(relay), recorder)
    wait_for(lambda: source.status().caught_up, message="history walk")
    assert recorder.ids == [theirs.id, ours.id, theirs.id]
    status = source.status()
    assert (status.events_received, status.events_accepted, status.events_rejected) == (2, 2, 0)


class RecordingSyncPort:
    """The actor system's side of the GRASP policy, recorded (a leaf edge of these tests)."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[str, str]] = []

    def enqueue_sync(self, identifier: str, reason: str = "user") -> None:
        self.enqueued.append((identifier, reason))

    def git_data_arrived(self, identifier: str) -> None:
        pass

    def release_now(self, identifier: str, timeout: float = 60.0) -> None:
        raise AssertionError("no git data exists in this test, nothing can be released")


def test_synced_through_the_grasp_policy(tmp_path, source_relay, sync):
    """End to end with the real GRASP-01 policy (S10.4) over a real store, purgatory and repos:
    the owner's announcement is held and its repo created, the (older) maintainer announcement is
    accepted on the second pass, the maintainer's state waits for git data with the synced delay
    (S4.2), and a state that already expired from purgatory is refused because it came by sync
    (S1.4)."""
    domain = "relay.example"
    owner, maintainer = Key(), Key()
    ours = owner.announcement(
        "repo",
        clone=[f"https://{domain}/{npub_encode(owner.pubkey)}/repo.git"],
        relays=[f"wss://{domain}"],
        maintainers=[maintainer.pubkey],
        created_at=T + 100,
    )
    theirs = maintainer.announcement("repo", created_at=T)
    waiting = maintainer.state("repo", {"refs/heads/main": "a" * 40}, created_at=T + 50)
    expired = owner.state("repo", {"refs/heads/main": "b" * 40}, created_at=T + 60)
    relay = source_relay()
    seed(relay, ours, theirs, waiting, expired)

    clock = [0.0]
    store = EventStore(tmp_path / "ours.sqlite3")
    purgatory = PurgatoryStore(now=lambda: clock[0])
    purgatory.add_state(RepositoryState.from_event(expired), PurgatorySource.SYNC)
    clock[0] += purgatory.expiry_secs + 1
    assert list(purgatory.sweep().expired_ids) == [expired.id]
    index = RepositoryIndex(store, purgatory, tmp_path / "ours")
    port = RecordingSyncPort()
    policy = GraspWritePolicy(
        domain=domain,
        index=index,
        store=store,
        purgatory=purgatory,
        sync=port,
        notify=lambda event: None,
    )
    answers: dict[str, list[Result]] = {}

    def through_policy(event: Event, source: EventSource) -> Result:
        answers.setdefault(event.id, []).append(policy(event, source))
        return answers[event.id][-1]

    try:
        source = sync(ws_url(relay), through_policy)
        wait_for(lambda: source.status().caught_up, message="history walk")
        assert [r.prefix for r in answers[theirs.id]] == [Prefix.BLOCKED, None]
        assert answers[ours.id][0].prefix is Prefix.PURGATORY
        assert (tmp_path / "ours" / "repos" / npub_encode(owner.pubkey) / "repo.git").is_dir()
        assert answers[waiting.id][0].prefix is Prefix.PURGATORY and purgatory.contains(waiting.id)
        assert port.enqueued == [("repo", "synced")]
        assert (
            answers[expired.id][0].message
            == "invalid: previously expired from purgatory without git data"
        )
        status = source.status()
        assert (status.events_received, status.events_accepted, status.events_rejected) == (4, 3, 1)
    finally:
        assert source.stop(timeout=2)
        store.close()


# --- a misbehaving source ------------------------------------------------------------------------


def test_invalid_frames_are_dropped_counted_and_do_not_end_the_connection(scripted, sync):
    """Nothing a source sends can reach the policy unvalidated or end the loop: each bad frame
    is counted (events_invalid) and the events around it still arrive."""
    good = [signed(kind=kinds.ISSUE, created_at=T + i) for i in range(3)]
    forged = dict(signed(kind=kinds.ISSUE).to_json(), content="tampered")

    def script(peer: _Peer, frame: list) -> None:
        sub = frame[1]
        if sub != LIVE_SUB:
            peer.send("EOSE", sub)
            return
        peer.send("EVENT", sub, good[0].to_json())
        for bad in (
            "not json",
            '{"an": "object"}',
            "[]",
            '["EVENT"]',
            '["EVENT", "x", {}, 1]',
            "x" * 5000,
        ):  # the last is bigger than max_message_bytes
            peer.send_text(bad)
        peer.send("EVENT", sub, forged)  # bad id
        peer.send("EVENT", sub, signed(kind=1).to_json())  # kind not asked for
        peer.send("EVENT", "someone-elses-sub", signed(kind=kinds.ISSUE).to_json())
        peer.send("NOTICE", "hello")  # fine, logged
        peer.send("OK", "a" * 64, True, "")  # ignored
        peer.send("EVENT", sub, good[1].to_json())
        peer.send("EOSE", sub)
        peer.send("EVENT", sub, good[2].to_json())  # live

    server = scripted(script)
    recorder = Recorder()
    source = sync(server.url, recorder, max_message_bytes=4096)
    wait_for(lambda: good[2].id in recorder.ids, message="the live event after the junk")
    assert sorted(recorder.ids) == sorted(e.id for e in good)
    status = source.status()
    assert (status.events_invalid, status.events_received) == (9, 3)
    assert (status.state, status.reconnects, server.connections) == ("connected", 0, 1)


def test_write_policy_failure_is_contained(source_relay, sync):
    """A policy that raises costs that one event (counted as rejected), never the loop."""
    relay = source_relay()
    events = [signed(kind=kinds.ISSUE, created_at=T + i) for i in range(3)]
    seed(relay, *events)

    def decide(event: Event) -> Result:
        if event.id == events[1].id:
            raise RuntimeError("policy bug")
        return Result.ok()

    source = sync(ws_url(relay), Recorder(decide))
    wait_for(lambda: source.status().caught_up, message="history walk")
    status = source.status()
    assert (status.events_accepted, status.events_rejected, status.reconnects) == (2, 1, 0)


def test_refused_subscription_backs_off_with_the_reason(scripted, sync):
    server = scripted(lambda peer, frame: peer.send("CLOSED", frame[1], "blocked: not for you"))
    source = sync(server.url, Recorder(), backoff_initial=60)
    wait_for(lambda: source.status().state == "backing off", message="backing off")
    assert "blocked: not for you" in source.status().last_error


@pytest.fixture
def mute_source() -> Iterator[tuple[str, bytearray]]:
    """A server that completes one websocket handshake, then reads everything and never answers,
    not even a ping: the way a source behind a dead NAT mapping looks."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    received = bytearray()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = re.search(rb"sec-websocket-key: *(\S+)", request, re.I).group(1).decode()
            conn.sendall(
                (
                    f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade"
                    f"\r\nSec-WebSocket-Accept: {accept_token(key)}\r\n\r\n"
                ).encode()
            )
            while chunk := conn.recv(4096):
                received.extend(chunk)

    server = gevent.spawn(serve)
    yield f"ws://127.0.0.1:{listener.getsockname()[1]}/", received
    server.kill()
    listener.close()


def test_a_source_that_stops_answering_is_pinged_then_dropped(mute_source, sync):
    """After one silent ping interval we ping; after two we give up and back off."""
    url, received = mute_source
    source = sync(url, Recorder(), ping_interval=0.05, history_timeout=60, backoff_initial=60)
    wait_for(lambda: source.status().state == "backing off", message="silent source dropped")
    assert source.status().last_error.startswith("no data from the source for")
    assert client_opcodes(bytes(received))[:2] == [0x1, 0x9]  # our REQ, then a ping


def client_opcodes(data: bytes) -> list[int]:
    """Opcodes of the (masked) client frames in ``data`` (RFC 6455 §5.2)."""
    opcodes, at = [], 0
    while at + 2 <= len(data):
        size, at = data[at + 1] & 0x7F, at + 2
        opcodes.append(data[at - 2] & 0x0F)
        if size >= 126:
            width = 2 if size == 126 else 8
            size, at = int.from_bytes(data[at : at + width], "big"), at + width
        at += 4 + size  # mask key, payload
    return opcodes


def test_a_history_page_without_progress_ends_the_connection(scripted, sync):
    """A source that never sends EOSE would keep live events buffered forever; it is dropped."""
    server = scripted(
        lambda peer, frame: peer.send("EVENT", frame[1], signed(kind=kinds.ISSUE).to_json())
    )
    recorder = Recorder()
    source = sync(server.url, recorder, ping_interval=0.05, history_timeout=0.2, backoff_initial=60)
    wait_for(lambda: source.status().state == "backing off", message="stalled history dropped")
    assert source.status().last_error == "history page 1 made no progress for 0.2 s (no EOSE)"
    assert recorder.offered == []  # an unfinished walk's buffer is dropped; the next one repeats it


def test_a_refused_handshake_is_reported_briefly(scripted, sync):
    server = scripted(lambda peer, frame: None)
    source = sync(server.url + "not-a-relay", Recorder(), backoff_initial=60)
    wait_for(lambda: source.status().state == "backing off", message="refused handshake")
    assert source.status().last_error == "handshake refused: HTTP 404 Not Found"


# --- reconnecting --------------------------------------------------------------------------------


def test_backoff_doubles_to_five_minutes_while_the_source_is_down(sync):
    """S10.7: 5 s doubling, capped at 5 min; every failed attempt counts as a reconnect."""
    delays: list[float] = []

    def sleep(delay: float) -> None:
        delays.append(delay)
        gevent.sleep(3600 if len(delays) >= 9 else 0)  # then park until stop() kills us

    source = sync(f"ws://127.0.0.1:{free_port()}/", Recorder(), sleep=sleep, clock=lambda: 1000.0)
    wait_for(lambda: len(delays) >= 9, message="nine backoff delays")
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    status = source.status()
    assert (status.state, status.reconnects, status.last_error) == (
        "backing off",
        8,
        "connection refused",
    )
    assert status.next_attempt_at == 1300.0 and status.connected_since is None


def test_source_restart_reconnects_and_continues(source_relay, sync):
    """The source goes away → backing off → it comes back on the same port → we reconnect,
    catch up and receive what is published there (status shows each state and the reconnect)."""
    relay = source_relay(name="source")
    port = relay.port
    first = signed(kind=kinds.ISSUE)
    seed(relay, first)
    recorder = Recorder()
    source = sync(ws_url(relay), recorder, backoff_initial=0.05, backoff_max=0.2)
    wait_for(lambda: source.status().caught_up, message="first history walk")

    relay.shutdown(timeout=2)
    wait_for(
        lambda: source.status().state in ("backing off", "connecting"), message="disconnect seen"
    )
    assert source.status().last_error and not source.status().caught_up

    restarted = source_relay(port=port, name="source")  # same store: the history is still there
    wait_for(lambda: source.status().caught_up, message="reconnected and caught up")
    after = signed(kind=kinds.ISSUE)
    client = Client(ws_url(restarted))
    try:
        client.publish(after)
        wait_for(lambda: after.id in recorder.ids, timeout=1.0, message="event after the restart")
    finally:
        client.close()
    status = source.status()
    assert status.state == "connected" and status.reconnects >= 1
    assert recorder.ids.count(first.id) <= 2  # re-delivered at most once, inside the overlap


def test_reconnect_resumes_since_newest_seen_minus_overlap(scripted, sync):
    """A reconnect asks ``since`` = newest created_at seen − overlap, capped at now; a
    connection lost before the history walk finished does not move the resume point."""
    now = 3000

    def script(peer: _Peer, frame: list) -> None:
        sub = frame[1]
        if sub.startswith(PAGE_SUB_PREFIX):
            peer.send("EOSE", sub)
            peer.close()  # connection 2 ends right after its (complete) history walk
            return
        if peer.number == 1:
            peer.send("EVENT", sub, signed(kind=kinds.ISSUE, created_at=2000).to_json())
            peer.close()  # before EOSE: the walk is incomplete
        elif peer.number == 2:
            for at in (2000, 1000):
                peer.send("EVENT", sub, signed(kind=kinds.ISSUE, created_at=at).to_json())
            peer.send("EOSE", sub)
        elif peer.number == 3:
            peer.send("EOSE", sub)  # nothing new: caught up at once, then a future-dated live event
            peer.send("EVENT", sub, signed(kind=kinds.ISSUE, created_at=10**9).to_json())
            peer.close()
        else:
            peer.send("EOSE", sub)

    server = scripted(script)
    source = sync(
        server.url,
        Recorder(),
        resume_overlap=100,
        clock=lambda: float(now),
        sleep=lambda delay: gevent.sleep(0.01),
    )
    wait_for(
        lambda: server.connections >= 4 and source.status().caught_up, message="fourth connection"
    )
    live_reqs = [frame for _, frame in server.requests() if frame[1] == LIVE_SUB]
    assert [flt.get("since") for flt in (frame[2] for frame in live_reqs[:4])] == [
        None,
        None,
        1900,
        2900,
    ]
    assert live_reqs[0][2]["kinds"] == [
        30617,
        30618,
        1617,
        1618,
        1619,
        1621,
        1630,
        1631,
        1632,
        1633,
    ]


# --- stopping ------------------------------------------------------------------------------------


def open_sockets() -> list[BoundedWebSocket]:
    return [o for o in gc.get_objects() if isinstance(o, BoundedWebSocket) and o.sock is not None]


def test_stop_leaves_no_greenlets_or_sockets(source_relay):
    """stop() closes the websocket (the source sees the connection end) and ends each greenlet,
    from every state: live, backing off, and stuck in a handshake that never completes."""
    relay = source_relay()
    silent = socket.socket()  # accepts TCP (backlog) but never answers the handshake
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    sources = SyncSources(
        [
            ws_url(relay),
            ws_url(relay),
            f"ws://127.0.0.1:{free_port()}/",
            f"ws://127.0.0.1:{silent.getsockname()[1]}/",
        ],
        SyncSourceSettings(backoff_initial=300, connect_timeout=30),
        Recorder(),
    )
    try:
        assert len(sources) == 3  # the duplicate URL is synced once
        sources.start()
        wait_for(
            lambda: (
                [s.state for s in sources.status()] == ["connected", "backing off", "connecting"]
            ),
            message="live, backing off and connecting",
        )
        assert len(relay.server.websocket_connections) == 1
        started = time.monotonic()
        assert sources.stop(timeout=2)
        assert time.monotonic() - started < 1.0
    finally:
        silent.close()
    assert all(source._greenlet.dead for source in sources)
    assert [s.state for s in sources.status()] == ["stopped"] * 3
    wait_for(lambda: len(relay.server.websocket_connections) == 0, message="source sees the close")
    gc.collect()
    assert open_sockets() == []


def test_stop_lets_a_policy_call_in_progress_finish(source_relay):
    """The policy may be writing refs and events: stop() waits for that call (bounded), then no
    further event is offered."""
    relay = source_relay()
    seed(relay, *(signed(kind=kinds.ISSUE, created_at=T + i) for i in range(3)))
    entered, release = gevent.event.Event(), gevent.event.Event()
    finished: list[str] = []

    def decide(event: Event) -> Result:
        entered.set()
        release.wait(5)
        finished.append(event.id)
        return Result.ok()

    recorder = Recorder(decide)
    source = SyncSource(ws_url(relay), SyncSourceSettings(), recorder)
    source.start()
    assert entered.wait(5)
    stopping = gevent.spawn(source.stop, 5)
    wait_for(lambda: source._stopping, message="stop() waiting for the policy call")
    release.set()
    assert stopping.get(timeout=5) is True
    assert len(finished) == len(recorder.offered) == 1


def test_feeding_a_large_history_never_holds_the_hub(source_relay, sync):
    """Signature checks and policy calls are CPU work; the sync greenlet yields to the hub every
    ``YIELD_EVERY`` events it handles, so other greenlets run while a 600-event history is fed.
    Counted in events per run of the greenlet (switch in to switch out), not in milliseconds: a
    duration bound fails on a loaded machine and passes on a fast one for the wrong reason."""
    relay = source_relay()
    seed(relay, *(signed(kind=kinds.ISSUE, created_at=T + i) for i in range(600)))
    recorder = Recorder()
    runs: list[int] = []  # offers made during each completed run of the sync greenlet
    current: dict[str, object] = {"greenlet": None, "offered": 0}

    def trace(event: str, args: tuple) -> None:
        if event not in ("switch", "throw"):
            return
        if "sync-source" in str(getattr(current["greenlet"], "name", "")):
            runs.append(len(recorder.offered) - int(current["offered"]))  # type: ignore[call-overload]
        current["greenlet"], current["offered"] = args[1], len(recorder.offered)

    previous = greenlet.settrace(trace)
    try:
        source = sync(ws_url(relay), recorder)
        wait_for(lambda: source.status().caught_up, message="history walk")
    finally:
        greenlet.settrace(previous)
    assert source.status().events_received == 600
    assert sum(runs) == len(recorder.offered) == 600  # every offer happened in a counted run
    assert max(runs) <= YIELD_EVERY, f"{max(runs)} events fed without yielding"


# --- the wire: bounded messages ------------------------------------------------------------------


def ws_frame(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    """An unmasked server frame (RFC 6455 §5.2)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + size.to_bytes(2, "big")
    else:
        head += bytes([127]) + size.to_bytes(8, "big")
    return head + payload


@pytest.fixture
def bounded_pair() -> Iterator[Callable[[int], tuple[BoundedWebSocket, socket.socket]]]:
    """A BoundedWebSocket on one end of a socketpair; the test writes frames into the other."""
    pairs: list[tuple[BoundedWebSocket, socket.socket]] = []

    def make(limit: int) -> tuple[BoundedWebSocket, socket.socket]:
        ours, theirs = socket.socketpair()
        ws = BoundedWebSocket(limit)
        ws.sock, ws.connected = ours, True
        ws.settimeout(2)
        pairs.append((ws, theirs))
        return pairs[-1]

    yield make
    for ws, theirs in pairs:
        ws.shutdown()
        theirs.close()


def test_oversized_messages_are_read_past_in_bounded_memory(bounded_pair):
    """A 4 MiB frame and a fragmented message over the bound are skipped (MessageSkipped) with
    far less memory than their size, and the next message is read normally."""
    ws, peer = bounded_pair(1000)
    stream = (
        ws_frame(b"x" * (4 << 20))
        + ws_frame(b"a" * 600, fin=False)
        + ws_frame(b"b" * 600, 0x0, False)
        + ws_frame(b"c" * 600, 0x0)
        + ws_frame(b'["EOSE","s"]')
    )
    writer = gevent.spawn(peer.sendall, stream)
    tracemalloc.start()
    try:
        with pytest.raises(MessageSkipped) as single:
            ws.recv_data_frame()
        with pytest.raises(MessageSkipped) as fragmented:
            ws.recv_data_frame()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (single.value.size, fragmented.value.size) == (4 << 20, 1800)
    assert peak < 512 * 1024
    opcode, frame = ws.recv_data_frame()
    assert (opcode, frame.data) == (websocket.ABNF.OPCODE_TEXT, b'["EOSE","s"]')
    writer.join(timeout=2)


def test_skipping_resumes_after_a_read_timeout(bounded_pair):
    """A read timeout in the middle of an oversized frame (the keepalive tick) loses nothing."""
    ws, peer = bounded_pair(100)
    big = ws_frame(b"y" * 5000)
    peer.sendall(big[:2500])
    ws.settimeout(0.05)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv_data_frame()
    peer.sendall(big[2500:] + ws_frame(b"[]"))
    ws.settimeout(2)
    with pytest.raises(MessageSkipped):
        ws.recv_data_frame()
    assert ws.recv_data_frame()[1].data == b"[]"


# --- the history walk as pure state --------------------------------------------------------------


def fake_event(number: int, created_at: int, kind: int = kinds.ISSUE) -> Event:
    """Unsigned: HistorySync never validates, it only pages and orders."""
    return Event(
        id=f"{number:064x}",
        pubkey="0" * 64,
        created_at=created_at,
        kind=kind,
        tags=(),
        content="",
        sig="0" * 128,
    )


def serve_page(stored: list[Event], flt: dict, limit: int) -> list[Event]:
    """What a NIP-01 relay answers: matches of since/until, newest first, ties by lowest id."""
    matches = [e for e in stored if flt.get("since", 0) <= e.created_at <= flt.get("until", 2**62)]
    return sorted(matches, key=lambda e: (-e.created_at, e.id))[:limit]


def walk(history: HistorySync, stored: list[Event], limit: int) -> tuple[list[Event], list[dict]]:
    fed, filters = [], [history.first_filter()]
    while True:
        for event in serve_page(stored, filters[-1], limit):
            fed += history.add_page_event(event)
        following = history.end_page()
        if following is None:
            return fed + history.drain(), filters
        filters.append(following)


@pytest.mark.parametrize("seed_value", range(25))
def test_paging_collects_every_event_when_no_second_overflows_a_page(seed_value):
    rng = random.Random(seed_value)
    limit = rng.randint(3, 8)
    stored, number = [], 0
    for second in rng.sample(range(1000), rng.randint(0, 40)):
        for _ in range(rng.randint(1, limit - 1)):
            number += 1
            stored.append(fake_event(number, second))
    history = HistorySync([kinds.ISSUE], since=None)
    fed, _ = walk(history, stored, limit)
    assert sorted(e.id for e in fed) == sorted(e.id for e in stored)  # each exactly once
    assert fed == sorted(stored, key=dependency_key) and history.done and not history.truncated


def test_paging_ends_when_one_second_holds_more_than_a_page():
    """Those events cannot be reached with NIP-01 filters; the walk must still end."""
    stored = [fake_event(n, 500) for n in range(10)] + [fake_event(100 + n, 400) for n in range(3)]
    history = HistorySync([kinds.ISSUE], since=None)
    fed, filters = walk(history, stored, limit=4)
    assert len(filters) == 2 and len(fed) == 4 and history.done


def test_paging_keeps_since_and_stops_at_max_pages():
    stored = [fake_event(n, 100 + n) for n in range(30)]
    history = HistorySync([kinds.ISSUE, kinds.PATCH], since=110, max_pages=3)
    fed, filters = walk(history, stored, limit=5)
    assert all(f["since"] == 110 and f["kinds"] == [kinds.ISSUE, kinds.PATCH] for f in filters)
    assert [f.get("until") for f in filters] == [None, 125, 121]
    assert history.truncated and len(fed) == 13  # 5 + 4 new + 4 new; the overlap fed once


def test_refused_announcements_are_offered_again_only_after_progress_on_their_identifier():
    """Maintainer chains (S10.3) are followed pass by pass; an announcement of another
    identifier, refused for good, costs one offer; so does every non-announcement."""

    def announcement(number: int, d: str, pubkey: str) -> Event:
        return Event(
            id=f"{number:064x}",
            pubkey=pubkey * 64,
            created_at=number,
            kind=kinds.REPO_ANNOUNCEMENT,
            tags=(("d", d),),
            content="",
            sig="0" * 128,
        )

    m2, m1, owner = (
        announcement(1, "repo", "2"),
        announcement(2, "repo", "1"),
        announcement(3, "repo", "0"),
    )
    stranger = announcement(4, "other", "3")
    issue = fake_event(5, 5)
    trusted = {"0" * 64: "", "1" * 64: "0" * 64, "2" * 64: "1" * 64}  # author -> who lists them
    accepted: set[str] = set()
    offers: list[str] = []

    def offer(event: Event) -> Result:
        offers.append(event.id)
        if event.kind == kinds.ISSUE or trusted.get(event.pubkey) in accepted | {""}:
            accepted.add(event.pubkey)
            return Result.ok()
        return Result.reject(Prefix.BLOCKED, "announcement must list this relay")

    batch = sorted([issue, stranger, owner, m1, m2], key=dependency_key)
    results = {event.id: result.accepted for event, result in offer_in_order(batch, offer)}
    assert results == {m2.id: True, m1.id: True, owner.id: True, stranger.id: False, issue.id: True}
    assert offers == [m2.id, m1.id, owner.id, stranger.id, m2.id, m1.id, m2.id, issue.id]
    assert (
        len(
            list(offer_in_order(batch[:4], lambda e: Result.reject(Prefix.BLOCKED, "no"), passes=1))
        )
        == 4
    )


def test_a_full_buffer_is_handed_out_sorted_and_emptied():
    history = HistorySync([kinds.ISSUE], since=None, max_buffered=3)
    events = [fake_event(1, 30), fake_event(2, 20, kinds.REPO_ANNOUNCEMENT), fake_event(3, 10)]
    assert history.add_page_event(events[0]) == [] and history.add_live_event(events[1]) == []
    assert history.add_page_event(events[2]) == [events[1], events[2], events[0]]
    assert history.buffered == 0 and history.newest == 30
    by_bytes = HistorySync([kinds.ISSUE], since=None, max_buffered_bytes=10_000)
    big = Event(
        id="f" * 64,
        pubkey="0" * 64,
        created_at=1,
        kind=kinds.PATCH,
        tags=(),
        content="p" * 9500,
        sig="0" * 128,
    )
    assert by_bytes.add_page_event(events[0]) == [] and by_bytes.add_page_event(big) == [
        big,
        events[0],
    ]
