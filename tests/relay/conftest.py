"""Shared helpers for the relay tests: signed events, a JSON websocket client, relay fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from grasp.config import Config
from grasp.nostr.event import Event, generate_secret_key, sign_event
from grasp.relay.connection import WebSocketLimits
from grasp.relay.server import Relay, open_relay
from tests.support.relay import relay_factory  # noqa: F401  (fixture re-exported)

SECRET = generate_secret_key()
_counter = iter(range(10**9))


def signed(kind: int = 1, content: str | None = None, tags: list[list[str]] | None = None,
           secret: str = SECRET, created_at: int | None = None) -> Event:
    """A valid event; the content is unique unless given, so ids never collide by accident."""
    text = content if content is not None else f"note {next(_counter)}"
    return sign_event(secret, kind, tags or [], text, created_at=created_at)


class Client:
    """A websocket-client connection speaking JSON frames, with a receive timeout."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout)

    def send(self, *frame: Any) -> None:
        self.ws.send(json.dumps(list(frame)))

    def send_raw(self, text: str) -> None:
        self.ws.send(text)

    def recv(self) -> list[Any]:
        return json.loads(self.ws.recv())

    def expect(self, verb: str) -> list[Any]:
        frame = self.recv()
        assert frame[0] == verb, frame
        return frame

    def publish(self, event: Event) -> list[Any]:
        """EVENT, then the OK frame."""
        self.send("EVENT", event.to_json())
        return self.expect("OK")

    def req(self, sub_id: str, *filters: dict) -> list[dict]:
        """REQ, then the stored events up to EOSE."""
        self.send("REQ", sub_id, *filters)
        events = []
        while (frame := self.recv())[0] == "EVENT":
            assert frame[1] == sub_id
            events.append(frame[2])
        assert frame == ["EOSE", sub_id]
        return events

    def close(self) -> None:
        self.ws.close()


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


def in_process_relay(tmp_path: Path, limits: WebSocketLimits | None = None, **overrides: Any) -> Relay:
    """A started relay inside the test process (port 0), for transport tests that tune limits."""
    config = Config(host="127.0.0.1", port=0, data_dir=tmp_path / "data", **overrides)
    relay = open_relay(config, limits=limits)
    relay.start()
    return relay


def ws_url(relay: Relay) -> str:
    return f"ws://127.0.0.1:{relay.port}/"
