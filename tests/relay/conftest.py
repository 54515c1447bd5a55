"""Shared helpers for the relay tests: signed events, a JSON websocket client, relay fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grasp.nostr.event import Event, generate_secret_key, sign_event
from grasp.relay.config import Config
from grasp.relay.transport.connection import WebSocketLimits
from grasp.relay.transport.server import Relay
from tests.support.plain_relay import open_relay
from tests.support.postgres import postgres_database, postgres_server  # noqa: F401 (S19 tests)
from tests.support.relay import RelayClient as Client
from tests.support.relay import accepted_repository as support_accepted_repository
from tests.support.relay import issue as support_issue
from tests.support.relay import relay_factory  # noqa: F401  (fixture re-exported)
from tests.support.world import world  # noqa: F401  (fixture re-exported: git service tests)

SECRET = generate_secret_key()
_counter = iter(range(10**9))


def signed(
    kind: int = 1,
    content: str | None = None,
    tags: list[list[str]] | None = None,
    secret: str = SECRET,
    created_at: int | None = None,
) -> Event:
    """A valid event; the content is unique unless given, so ids never collide by accident."""
    text = content if content is not None else f"note {next(_counter)}"
    return sign_event(secret, kind, tags or [], text, created_at=created_at)


def issue(
    repo: Event,
    content: str | None = None,
    tags: list[list[str]] | None = None,
    secret: str = SECRET,
) -> Event:
    """A kind 1621 issue referencing ``repo``: accepted by the GRASP policy and the plain one."""
    return support_issue(repo, secret, content, tags or [])


def accepted_repository(client: Client, domain: str, identifier: str = "repo") -> Event:
    return support_accepted_repository(client, domain, SECRET, identifier)


@pytest.fixture
def connect() -> Iterator:
    """``connect(url)`` opens a Client; all are closed at teardown."""
    clients: list[Client] = []

    def open_client(url: str, timeout: float = 5.0) -> Client:
        clients.append(Client(url, timeout))
        return clients[-1]

    yield open_client
    for client in clients:
        client.close()


def in_process_relay(
    tmp_path: Path, limits: WebSocketLimits | None = None, **overrides: Any
) -> Relay:
    """A started relay inside the test process (port 0), for transport tests that tune limits."""
    config = Config(host="127.0.0.1", port=0, data_dir=tmp_path / "data", **overrides)
    relay = open_relay(config, limits=limits)
    relay.start()
    return relay


def ws_url(relay: Relay) -> str:
    return f"ws://127.0.0.1:{relay.port}/"
