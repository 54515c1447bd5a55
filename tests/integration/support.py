"""The end-to-end harness: ``grasp-relay`` processes, git servers and clients, all real.

:class:`Cluster` starts what a test needs and stops all of it at teardown:

* relays through the console script (:class:`~tests.support.relay.RelayProcess`), each on
  port 0 with its own data directory, ``--allow-private-fetch`` (every remote here is on
  loopback, S3.4) and short sync delays — :data:`FAST_SYNC`;
* git servers (:class:`~tests.support.gitserver.GitServer`, the real ``git http-backend``)
  whose v2 commands are recorded, so the report can say what each remote saw.

:class:`E2ERelay` is a relay seen from outside: events are published with nostr-sdk (rust-nostr,
an independent implementation), queried with websocket-client, git is the ``git`` CLI, and
``/status.json`` tells what is held.

A relay that others must list in an announcement *before* it starts (a relay that syncs
another one's history, or one that restarts) gets a fixed public authority with ``--domain``
(``<name>.relay.invalid``): the announcement names it, the relay recognises its own clone URL
by it (S3.2) and never fetches from itself, and it survives a restart on a new port. The
relay is reached at its listening address; the ``.invalid`` name is never resolved.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import Event
from tests.integration.remotes import (
    CommandLog,
    GitRequests,
    Wrap,
    command_recorder,
    pack_requests,
    relay_git_requests,
    server_git_requests,
)
from tests.support.gitrepo import git
from tests.support.gitserver import GitServer, RequestRecord, V0OnlyServer, _BaseServer
from tests.support.nip34 import Key
from tests.support.relay import RelayClient, RelayProcess
from tests.support.wait import wait_for

#: Options of every relay of this tier: no peer discovery (S17.1, see below), synced events
#: wait 100 ms instead of 500 (S4.2), the
#: safety-net tick runs every 200 ms (S4.4), and DEBUG logs the access lines the request counts
#: come from. ``--allow-private-fetch`` is added unless a test says otherwise (every remote here
#: is on loopback, S3.4). The user delay (S4.2) stays 180 s unless a test shortens it, so on a
#: source relay only a push releases what a user published.
FAST_SYNC = (
    # These tests are about purgatory sync's mechanics (S4-S8) between relays that all list
    # each other: with GRASP-02 discovery (S17.1) every relay would also copy the others'
    # events, and which fetch released what would depend on that race. Peers have their own
    # tests (tests/relay/test_peers_*.py).
    "--no-discover-relays",
    "--sync-immediate-delay-ms",
    "100",
    "--sync-loop-interval-ms",
    "200",
    "--log-level",
    "DEBUG",
)

#: How long any single wait of this tier may take; the whole test is bounded separately.
WAIT_SECS = 15.0


def planned_domain(name: str) -> str:
    """The fixed public authority of relay ``name`` (known before it starts; never resolved)."""
    return f"{name.lower()}.relay.invalid"


def clone_url_at(domain: str, owner_pubkey: str, identifier: str) -> str:
    """A GRASP clone URL (S10.4): ``http://<domain>/<npub>/<identifier>.git``."""
    return f"http://{domain}/{npub_encode(owner_pubkey)}/{identifier}.git"


@dataclass(frozen=True)
class Published:
    event_id: str
    accepted: bool
    message: str  # the relay's reason when refused ("" when accepted: nostr-sdk keeps no text)


def publish_with_nostr_sdk(
    ws_url: str, events: Sequence[Event], *, concurrently: bool = False, timeout: float = 10.0
) -> list[Published]:
    """Send ``events`` with nostr-sdk, one after the other on one connection, or
    ``concurrently``: each on its own connection, all at once. nostr-sdk parses and verifies
    every event itself first (an independent check of our signer)."""
    import nostr_sdk

    async def send(batch: Sequence[Event]) -> list[Published]:
        client = nostr_sdk.Client()
        url = nostr_sdk.RelayUrl.parse(ws_url)
        await client.add_relay(url)
        connected = await client.try_connect(timedelta(seconds=timeout))
        assert url in connected.success, (
            f"nostr-sdk could not connect to {ws_url}: {connected.failed}"
        )
        try:
            results = []
            for event in batch:
                sdk_event = nostr_sdk.Event.from_json(json.dumps(event.to_json()))
                assert sdk_event.verify(), f"nostr-sdk finds event {event.id} invalid"
                out = await client.send_event(sdk_event)
                results.append(
                    Published(event.id, url in out.success, next(iter(out.failed.values()), ""))
                )
            return results
        finally:
            await client.disconnect()

    async def all_of_them() -> list[Published]:
        if not concurrently:
            return await send(events)
        batches = await asyncio.gather(*(send([event]) for event in events))
        return [published for batch in batches for published in batch]

    async def bounded() -> list[Published]:
        return await asyncio.wait_for(all_of_them(), timeout)

    return asyncio.run(bounded())


class E2ERelay:
    """One named ``grasp-relay`` process (possibly restarted) and what tests ask of it."""

    def __init__(
        self,
        name: str,
        data_dir: Path,
        args: Sequence[str],
        domain: str | None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.data_dir = data_dir
        self.args = tuple(args)
        self.fixed_domain = domain
        self.env = dict(env or {})
        self.process = RelayProcess(data_dir, *self.args, env=self.env)
        self.previous_logs: list[str] = []  # of earlier incarnations (restart, kill)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> E2ERelay:
        self.process.start()
        return self

    def stop(self) -> int | None:
        return self.process.stop()

    def kill(self) -> None:
        """SIGKILL: no purgatory file, no clean close of anything (S9.1 does not apply)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process.stop()  # reaps and joins the log reader

    def restart(self) -> E2ERelay:
        """Start a new process on the same data directory and options (a new port)."""
        assert self.process.returncode is not None, "stop or kill the relay before restarting it"
        self.previous_logs.append(self.process.log)
        self.process = RelayProcess(self.data_dir, *self.args, env=self.env)
        return self.start()

    # --- addresses ---------------------------------------------------------------------------

    @property
    def domain(self) -> str:
        """The public authority: ``--domain`` if fixed, else the bound ``127.0.0.1:<port>``."""
        return self.fixed_domain or f"127.0.0.1:{self.process.port}"

    @property
    def ws_url(self) -> str:
        return self.process.ws_url

    @property
    def http_url(self) -> str:
        return self.process.http_url

    def public_clone_url(self, owner_pubkey: str, identifier: str) -> str:
        """The clone URL announcements list for this relay (S10.4)."""
        return clone_url_at(self.domain, owner_pubkey, identifier)

    @property
    def public_relay_url(self) -> str:
        return f"ws://{self.domain}"

    def clone_url(self, owner_pubkey: str, identifier: str) -> str:
        """Where the git CLI reaches the repository (the listening address)."""
        return f"{self.http_url}/{npub_encode(owner_pubkey)}/{identifier}.git"

    def repo_path(self, owner_pubkey: str, identifier: str) -> Path:
        return self.data_dir / "repos" / npub_encode(owner_pubkey) / f"{identifier}.git"

    # --- nostr -------------------------------------------------------------------------------

    def publish(self, *events: Event, concurrently: bool = False) -> list[Published]:
        """Publish with nostr-sdk and require every event to be accepted (stored or held)."""
        results = publish_with_nostr_sdk(self.ws_url, events, concurrently=concurrently)
        refused = [r for r in results if not r.accepted]
        assert not refused, f"{self.name} refused {refused}"
        return results

    def served_ids(self, *event_ids: str) -> set[str]:
        with self.client() as client:
            return {e["id"] for e in client.req("served", {"ids": list(event_ids)})}

    def wait_served(self, *events: Event, timeout: float = WAIT_SECS) -> None:
        ids = {e.id for e in events}
        wait_for(
            lambda: self.served_ids(*ids) == ids,
            timeout,
            interval=0.05,
            message=lambda: (
                f"{self.name} to serve {sorted(ids - self.served_ids(*ids))}\n{self.log_tail()}"
            ),
        )

    @contextmanager
    def client(self) -> Iterator[RelayClient]:
        """A websocket-client connection, always closed (an open one delays the relay's stop)."""
        client = RelayClient(self.ws_url)
        try:
            yield client
        finally:
            client.close()

    # --- HTTP views ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.http_url}/status.json", timeout=5) as response:
            return json.loads(response.read())

    def held(self) -> dict[str, int]:
        """Purgatory counts by kind ("30617", "30618", "1618", "1619", "placeholder")."""
        return self.status()["purgatory"]["counts"]

    def wait_held(self, timeout: float = WAIT_SECS, **expected: int) -> None:
        """Wait until purgatory holds exactly these counts, e.g. ``wait_held(k30618=1)``."""
        want = {key.removeprefix("k"): value for key, value in expected.items()}
        wait_for(
            lambda: all(self.held().get(k) == v for k, v in want.items()),
            timeout,
            interval=0.05,
            message=lambda: f"{self.name} to hold {want}, holds {self.held()}\n{self.log_tail()}",
        )

    def ls_remote(self, owner_pubkey: str, identifier: str) -> dict[str, str]:
        out = git("ls-remote", self.clone_url(owner_pubkey, identifier))
        return {ref: oid for oid, ref in (line.split("\t") for line in out.splitlines())}

    # --- logs ----------------------------------------------------------------------------------

    @property
    def log(self) -> str:
        """Every incarnation's stderr, oldest first."""
        return "".join([*self.previous_logs, self.process.log])

    def log_tail(self, lines: int = 40) -> str:
        return f"--- last {lines} lines of {self.name}'s log ---\n" + "\n".join(
            self.log.splitlines()[-lines:]
        )

    def wait_for_log(self, pattern: str, timeout: float = WAIT_SECS) -> re.Match[str]:
        """The first log line of the current process matching ``pattern`` (waits for it)."""
        return self.process.wait_for_log(pattern, timeout)

    def git_requests(self) -> GitRequests:
        """Upload-pack requests this relay served, as a remote of others (its access log)."""
        return relay_git_requests(self.log)


def push(local: Path, url: str, *refspecs: str) -> str:
    """``git push`` from a local (bare) repository; stderr carries the relay's answers."""
    proc = subprocess.run(
        ["git", "--git-dir", str(local), "push", "--porcelain", url, *refspecs],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, f"git push {url} {refspecs} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout + proc.stderr


class Cluster:
    """Everything one test started: relays and git servers, stopped in reverse at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.relays: dict[str, E2ERelay] = {}
        self.servers: dict[str, tuple[_BaseServer, CommandLog | None]] = {}
        self.started_at = time.monotonic()

    def relay(
        self,
        name: str,
        *args: str,
        fixed_domain: bool = False,
        sync_from: Sequence[E2ERelay] = (),
        user_delay: float | None = None,
        allow_private_fetch: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> E2ERelay:
        """Start relay ``name`` with :data:`FAST_SYNC` and ``args``; ``fixed_domain`` gives it
        :func:`planned_domain` as its public authority, ``user_delay`` shortens the S4.2 user
        delay, ``env`` adds environment variables (the process inherits the test's otherwise)."""
        assert name not in self.relays, f"relay {name} already started"
        domain = planned_domain(name) if fixed_domain else None
        argv = [*FAST_SYNC, *(["--allow-private-fetch"] if allow_private_fetch else [])]
        if domain:
            argv += ["--domain", domain]
        for source in sync_from:
            argv += ["--sync-source", source.ws_url]
        if user_delay is not None:
            argv += ["--sync-default-delay-secs", str(user_delay)]
        relay = E2ERelay(name, self.root / name, [*argv, *args], domain, env)
        self.relays[name] = relay
        return relay.start()

    def git_server(
        self, name: str, *, host: str = "127.0.0.1", wrap: Wrap | None = None
    ) -> GitServer:
        """A started ``git http-backend`` server
        serving the bare repositories below ``root/name``."""
        commands = CommandLog()
        recorder = command_recorder(commands)
        full = recorder if wrap is None else (lambda app: recorder(wrap(app)))
        server = GitServer(self.root / name, host=host, wrap=full)
        (self.root / name).mkdir(parents=True, exist_ok=True)
        self.servers[name] = (server, commands)
        return server.start()

    def v0_server(self, name: str, *, host: str = "127.0.0.1") -> V0OnlyServer:
        server = V0OnlyServer(self.root / name, host=host)
        (self.root / name).mkdir(parents=True, exist_ok=True)
        self.servers[name] = (server, None)
        return server.start()

    def git_requests(self) -> dict[str, GitRequests]:
        """Per server: what it saw of upload-pack traffic (relays: their access logs, which
        also count the test's own ``git ls-remote`` checks: one GET and one POST each)."""
        counts = {
            name: server_git_requests(server, commands)
            for name, (server, commands) in self.servers.items()
        }
        counts.update({name: relay.git_requests() for name, relay in self.relays.items()})
        return counts

    def pack_requests(self, name: str) -> list[RequestRecord]:
        """Git server ``name``'s pack requests (with the bytes each response carried)."""
        server, commands = self.servers[name]
        assert commands is not None, f"{name} records no commands"
        return pack_requests(server, commands)

    def server_kinds(self) -> dict[str, str]:
        kinds = {name: type(server).__name__ for name, (server, _) in self.servers.items()}
        kinds.update({name: "relay" for name in self.relays})
        return kinds

    def close(self) -> None:
        for relay in reversed(list(self.relays.values())):
            relay.stop()
        for server, _ in reversed(list(self.servers.values())):
            server.stop()


def announcement_listing(
    owner: Key,
    identifier: str,
    domains: Sequence[str],
    *,
    extra_clone: Sequence[str] = (),
    first_clone: Sequence[str] = (),
    maintainers: Sequence[str] = (),
    created_at: int = 1_700_000_000,
) -> Event:
    """An announcement whose ``clone`` and ``relays`` name each GRASP relay of ``domains`` (so
    each accepts it, S10.4), with other URLs (plain git servers, dead URLs) listed before
    (``first_clone``) or after (``extra_clone``) them: syncs try URLs in this order (S3.1)."""
    return owner.announcement(
        identifier,
        clone=[
            *first_clone,
            *(clone_url_at(d, owner.pubkey, identifier) for d in domains),
            *extra_clone,
        ],
        relays=[f"ws://{d}" for d in domains],
        maintainers=list(maintainers),
        created_at=created_at,
    )


def assert_log_in_order(relay: E2ERelay, *patterns: str) -> None:
    """Each pattern matches a log line after the line the previous one matched."""
    lines = relay.log.splitlines()
    position = 0
    for pattern in patterns:
        regex = re.compile(pattern)
        found = next((i for i in range(position, len(lines)) if regex.search(lines[i])), None)
        assert found is not None, (
            f"{relay.name}'s log has no {pattern!r} after line {position}\n{relay.log_tail()}"
        )
        position = found + 1


def fetch_lines(relay: E2ERelay, text: str) -> list[str]:
    """The sync and fetch log lines (actors.sync, grasp.git) that mention ``text``."""
    return [
        line
        for line in relay.log.splitlines()
        if text in line and (" actors.sync " in line or " grasp.git." in line)
    ]


def released_on_source(source: E2ERelay, announcement: Event, state: Event, local: Path) -> None:
    """A user's repository on ``source``: the announcement and the state are published (both
    held, S1.1/S1.2), then the state's refs are pushed from ``local``, so the source releases
    and serves them (S10.6, S8.2)."""
    owner, identifier = announcement.pubkey, announcement.d  # the owner's repository
    source.publish(announcement, state)
    source.wait_held(k30617=1, k30618=1)
    refs = [
        tag[0]
        for tag in state.tags
        if tag[0].startswith(("refs/heads/", "refs/tags/")) and not tag[0].endswith("^{}")
    ]
    push(local, source.clone_url(owner, identifier), *(f"{ref}:{ref}" for ref in refs))
    source.wait_served(announcement, state)
