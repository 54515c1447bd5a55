"""A GRASP relay seen the way an audit sees it: a ``grasp-relay`` process started by its CLI,
reached with websocket-client, plain HTTP and the ``git`` CLI, nothing else.

The relay runs on 127.0.0.1 port 0 with its default public authority (``127.0.0.1:<port>``), so
the clone and relay URLs in announcements are addresses that really answer. Every test uses
fresh keys and identifiers: tests share a relay and cannot see each other.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3

from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import Event, sign_event
from tests.support.nip34 import Key
from tests.support.relay import RelayClient, RelayProcess

HELD = "purgatory: won't be served until git data arrives"
_names = itertools.count()


def fresh(prefix: str = "conformance") -> str:
    """An identifier no other test uses."""
    return f"{prefix}-{next(_names)}-{time.monotonic_ns() % 1_000_000}"


@dataclass
class Grasp:
    """One relay process and what a client needs to talk to it."""

    process: RelayProcess

    @property
    def domain(self) -> str:
        return self.process.http_url.removeprefix("http://")

    @property
    def http_url(self) -> str:
        return self.process.http_url

    @property
    def ws_url(self) -> str:
        return self.process.ws_url

    def nip11(self) -> dict[str, Any]:
        return self.process.nip11()

    @contextmanager
    def client(self) -> Iterator[RelayClient]:
        client = RelayClient(self.ws_url, timeout=10)
        try:
            yield client
        finally:
            client.close()

    def publish(self, event: Event) -> list[Any]:
        """EVENT on a connection of its own; the OK frame."""
        with self.client() as client:
            return client.publish(event)

    def served(self, event_id: str) -> bool:
        with self.client() as client:
            return bool(client.req("served", {"ids": [event_id]}))

    # -- repositories ---------------------------------------------------------------------

    def clone_url(self, key: Key, identifier: str) -> str:
        """The clone URL an announcement lists (identifier percent-encoded, NIP-34)."""
        return f"http://{self.domain}/{npub_encode(key.pubkey)}/{quote(identifier)}.git"

    def announcement(self, key: Key, identifier: str, **kwargs: Any) -> Event:
        """A kind 30617 that lists this relay in ``clone`` and ``relays`` (L9)."""
        return key.announcement(
            identifier,
            clone=[self.clone_url(key, identifier), *kwargs.pop("clone", ())],
            relays=[f"ws://{self.domain}", *kwargs.pop("relays", ())],
            **kwargs,
        )

    def served_repository(self, key: Key, identifier: str, **kwargs: Any) -> Event:
        """An announcement that is served: announced, then an empty state promotes it (S8.2)."""
        repo = self.announcement(key, identifier, **kwargs)
        assert self.publish(repo)[2:] == [True, HELD]
        assert self.publish(key.state(identifier, {}, head=None))[2] is True
        wait_until(lambda: self.served(repo.id), f"announcement {repo.id} served")
        return repo

    def repo_dir(self, key: Key, identifier: str) -> Path:
        return self.process.data_dir / "repos" / npub_encode(key.pubkey) / f"{identifier}.git"

    def prs_url(self, key: Key, identifier: str) -> str:
        return f"{self.http_url}/prs/{npub_encode(key.pubkey)}/{quote(identifier)}.git"


def wait_until(condition: Any, what: str, timeout: float = 15.0) -> Any:
    """Poll ``condition`` until it is truthy (bounded); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # poll interval of a deadline-bounded condition check
    return value


def git(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The git CLI; the result is returned, never raised, so refusals can be read."""
    return subprocess.run(
        ["git", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def push(source: Path, url: str, *refspecs: str) -> subprocess.CompletedProcess[str]:
    return git("--git-dir", source, "push", url, *refspecs)


def http(method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
    with urllib3.PoolManager(retries=False, timeout=10) as pool:
        return pool.request(method, url, **kwargs)


def signed(key: Key, kind: int, tags: Sequence[Sequence[str]], content: str = "") -> Event:
    return sign_event(key.secret, kind, [list(t) for t in tags], content or f"{kind} {fresh()}")
