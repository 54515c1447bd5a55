"""Purgatory sync across a cluster of relay processes (S19.2): leases, the ledger, failover.

Nodes are started by the CLI on one PostgreSQL database and one data directory (see
``tests/cluster/nodes.py``); the remotes are real ``git http-backend`` servers in this process
on distinct loopback hosts (distinct domains, S3.3), whose request log is the judge:

- politeness summed over nodes: per domain, fetch sessions in flight at once and started in any
  window never exceed the configured limits, although each node alone would be allowed them;
- one fetch per identifier across the cluster;
- failover: a node SIGKILLed in the middle of a fetch holds a lease and ledger slots; a node
  started afterwards (it loads every held row of the database) syncs and releases the dead
  node's identifier once the lease expired (bounded: ``LEASE_TTL``), never before.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent.event
import pytest

from actors.fakes import max_in_window
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import Event
from messages.port import LEASE_TTL, RENEW_INTERVAL
from tests.cluster.nodes import DOMAIN, HELD
from tests.support.gitrepo import RepoBuilder
from tests.support.gitserver import GitServer, most_open
from tests.support.nip34 import Key
from tests.support.relay import RelayClient
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

CONCURRENT, PER_WINDOW, WINDOW = 2, 4, 2.0
LIMITS = (
    "--sync-default-delay-secs", "0",
    "--sync-domain-concurrent", str(CONCURRENT),
    "--sync-domain-rate-limit", str(PER_WINDOW),
    "--sync-rate-window-secs", str(WINDOW),
)  # fmt: skip


class Sessions:
    """WSGI middleware: one (start, end) per fetch session (``GET info/refs`` to its last
    response), per repository; ``stall`` holds requests of named repositories until released."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, float, float]] = []  # repo, method, start, end
        self.arrived: list[str] = []  # repo of every request, when it arrives
        self.stalled: set[str] = set()
        self.gate = gevent.event.Event()

    def wrap(self, app: Any) -> Any:
        def recorded(environ: dict[str, Any], start_response: Any) -> Any:
            repo = environ.get("PATH_INFO", "").strip("/").split("/", 1)[0]
            start = time.monotonic()
            self.arrived.append(repo)
            if repo in self.stalled:
                self.gate.wait()
            try:
                yield from app(environ, start_response)
            finally:
                self.spans.append(
                    (repo, environ.get("REQUEST_METHOD", ""), start, time.monotonic())
                )

        return recorded

    def fetches(self) -> list[tuple[str, float, float]]:
        """(repo, start, end) of every fetch session, by start."""
        out: list[tuple[str, float, float]] = []
        for repo in {s[0] for s in self.spans}:
            spans = sorted((s for s in self.spans if s[0] == repo), key=lambda s: s[2])
            session: list[tuple[str, str, float, float]] = []
            for span in spans:
                if span[1] == "GET" and session:
                    out.append((repo, session[0][2], max(s[3] for s in session)))
                    session = []
                session.append(span)
            if session:
                out.append((repo, session[0][2], max(s[3] for s in session)))
        return sorted(out, key=lambda f: f[1])


def _repository(server: GitServer, identifier: str) -> str:
    return RepoBuilder.create(server.root / f"{identifier}.git").commit(
        files={"id": identifier}, branch="main"
    )


def _announce(client: RelayClient, key: Key, identifier: str, remote: str) -> Event:
    own = f"http://{DOMAIN}/{npub_encode(key.pubkey)}/{identifier}.git"
    event = key.announcement(identifier, clone=[own, remote], relays=[f"ws://{DOMAIN}"])
    assert client.publish(event)[2:] == [True, HELD]
    return event


def _hold(client: RelayClient, key: Key, identifier: str, tip: str) -> Event:
    state = key.state(identifier, {"refs/heads/main": tip})
    assert client.publish(state)[2:] == [True, HELD]
    return state


def _served(client: RelayClient, *events: Event) -> bool:
    ids = [e.id for e in events]
    return len(client.req("s", {"ids": ids})) == len(ids)


def test_s19_2_s6_three_nodes_keep_the_limits_summed_and_fetch_each_identifier_once(
    cluster, tmp_path: Path
):
    log = Sessions()
    servers = []
    for host in ("127.0.0.2", "127.0.0.3"):
        (tmp_path / host).mkdir()
        servers.append(GitServer(tmp_path / host, host=host, wrap=log.wrap).start())
    try:
        nodes = cluster(3, *LIMITS)
        key = Key()
        clients = [RelayClient(node.ws_url, 30) for node in nodes]
        states = []
        for i in range(24):  # 12 per domain: at 2 per window every node alone could do more
            identifier, server = f"cl{i:02d}", servers[i % 2]
            tip = _repository(server, identifier)
            client = clients[i % 3]
            _announce(client, key, identifier, server.url(f"{identifier}.git"))
            states.append(_hold(client, key, identifier, tip))
        wait_for(lambda: _served(clients[0], *states), timeout=90, interval=0.5, message="served")
        # a span is logged when the server closes its response, which may come after the
        # relay already released what it brought
        wait_for(lambda: len({f[0] for f in log.fetches()}) == 24, timeout=10, message="logs")
        for client in clients:
            client.close()
    finally:
        for server in servers:
            server.stop()
    per_repo = Counter(repo for repo, _, _ in log.fetches())
    assert per_repo == Counter({f"cl{i:02d}.git": 1 for i in range(24)})
    for host, server in zip(("127.0.0.2", "127.0.0.3"), servers, strict=True):
        mine = [f for f in log.fetches() if int(f[0][2:4]) % 2 == servers.index(server)]
        assert len(mine) == 12, host
        assert most_open((start, end) for _, start, end in mine) <= CONCURRENT, host
        assert max_in_window([f[1] for f in mine], WINDOW) <= PER_WINDOW, host
        # the limit bound the run: 12 fetches at 4 per window took more than two windows
        assert mine[-1][1] - mine[0][1] >= 2 * WINDOW * 0.9, host


def test_s19_2_a_killed_nodes_identifier_is_synced_by_another_node_after_its_lease_expired(
    cluster, tmp_path: Path
):
    log = Sessions()
    (tmp_path / "remote").mkdir()
    server = GitServer(tmp_path / "remote", host="127.0.0.2", wrap=log.wrap).start()
    try:
        one, two = cluster(2, *LIMITS)
        key, identifier = Key(), "failover"
        tip = _repository(server, identifier)
        log.stalled.add(f"{identifier}.git")  # node one's fetch hangs at the server
        at_one = RelayClient(one.ws_url, 30)
        _announce(at_one, key, identifier, server.url(f"{identifier}.git"))
        state = _hold(at_one, key, identifier, tip)
        at_one.close()
        wait_for(lambda: f"{identifier}.git" in log.arrived, timeout=30, message="a fetch")
        one.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        one.wait(10)
        log.stalled.clear()
        log.gate.set()
        three = cluster(1, *LIMITS)[0]  # loads every held row of the database
        at_three = RelayClient(three.ws_url, 30)
        wait_for(lambda: _served(at_three, state), timeout=60, interval=0.25, message="release")
        at_three.close()
        at_two = RelayClient(two.ws_url, 30)  # and the cluster serves it everywhere
        wait_for(lambda: _served(at_two, state), timeout=10, message="served on node two")
        at_two.close()
        wait_for(lambda: any(f[1] > killed for f in log.fetches()), timeout=10, message="log")
    finally:
        log.gate.set()
        server.stop()
    retried = [f for f in log.fetches() if f[1] > killed]
    assert retried, "nobody fetched after the kill"
    # the dead node renewed its lease up to RENEW_INTERVAL before the kill: nobody took it over
    # before TTL - RENEW_INTERVAL had passed, and it was free within TTL (+ one retry second)
    waited = retried[0][1] - killed
    assert LEASE_TTL - RENEW_INTERVAL - 0.5 <= waited <= LEASE_TTL + 5, waited


def test_s19_2_running_nodes_release_every_held_event_of_a_node_killed_mid_fetch(
    cluster, tmp_path: Path
):
    """Node one admits three identifiers and is SIGKILLed while two of its fetches hang at the
    server (it holds their leases and the domain's two ledger slots) and the third waits for a
    slot. Nodes two and three keep running: they see its heartbeat stop, adopt what the
    database holds, and release all three once the dead node's leases and slots expired."""
    log = Sessions()
    (tmp_path / "remote").mkdir()
    server = GitServer(tmp_path / "remote", host="127.0.0.2", wrap=log.wrap).start()
    try:
        one, two, three = cluster(3, *LIMITS)
        key = Key()
        at_one = RelayClient(one.ws_url, 30)
        states = []
        for i in range(3):
            identifier = f"kill{i}"
            tip = _repository(server, identifier)
            log.stalled.add(f"{identifier}.git")
            _announce(at_one, key, identifier, server.url(f"{identifier}.git"))
            states.append(_hold(at_one, key, identifier, tip))
        at_one.close()
        wait_for(lambda: len(set(log.arrived)) >= CONCURRENT, timeout=30, message="fetches")
        one.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        one.wait(10)
        log.stalled.clear()
        log.gate.set()
        at_two = RelayClient(two.ws_url, 30)
        wait_for(lambda: _served(at_two, *states), timeout=60, interval=0.5, message="releases")
        released = time.monotonic() - killed
        at_two.close()
        at_three = RelayClient(three.ws_url, 30)
        assert _served(at_three, *states)
        at_three.close()
        wait_for(
            lambda: {f[0] for f in log.fetches() if f[1] > killed} >= {"kill0.git", "kill1.git"},
            timeout=10,
            message="the retries in the log",
        )
    finally:
        log.gate.set()
        server.stop()
    retried = [f for f in log.fetches() if f[1] > killed]
    assert min(f[1] for f in retried) - killed >= LEASE_TTL - RENEW_INTERVAL - 0.5
    assert released <= 45, released
