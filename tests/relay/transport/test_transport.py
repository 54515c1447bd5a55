"""The websocket transport on real sockets (in-process relay on port 0, tuned limits).

Covers what python-ecosystem.md §3 warns about: max message size (S10.1, close 1009 after a
NOTICE), ping/pong, slow consumers (bounded outbox, no hub stall), clean close handshakes,
bytes sent right behind the handshake, and graceful shutdown (1001).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import struct
import time

import gevent
import greenlet
import pytest
import websocket
from wsproto.connection import Connection, ConnectionType
from wsproto.events import Ping, TextMessage

from grasp.relay.transport.connection import WebSocketLimits
from tests.relay.conftest import Client, in_process_relay, signed, ws_url


@pytest.fixture
def start_relay(tmp_path):
    relays = []

    def start(**limits):
        relays.append(in_process_relay(tmp_path / str(len(relays)), WebSocketLimits(**limits)))
        return relays[-1]

    yield start
    for relay in relays:
        relay.shutdown(timeout=2)


def close_code(ws: websocket.WebSocket) -> int:
    """Read frames until the server's close frame; return its status code."""
    while True:
        opcode, frame = ws.recv_data_frame(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", frame.data[:2])[0]


class RawClient:
    """A hand-driven websocket client (wsproto framing) for what websocket-client hides."""

    def __init__(self, port: int, first_frames: bytes = b"", rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.ws = Connection(ConnectionType.CLIENT)
        self.sock.sendall(request.encode() + first_frames)
        buffered = b""
        while b"\r\n\r\n" not in buffered:
            buffered += self.sock.recv(4096)
        head, rest = buffered.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101 "), head
        self.ws.receive_data(rest)

    @staticmethod
    def frame(text: str) -> bytes:
        return Connection(ConnectionType.CLIENT).send(TextMessage(data=text))

    def send(self, *message) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(list(message)))))

    def next_event(self):
        while True:
            for event in self.ws.events():
                return event
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)

    def close(self) -> None:
        self.sock.close()


def test_s10_1_oversize_message_gets_notice_then_close_1009_and_others_keep_working(
    start_relay, connect
):
    relay = start_relay(max_message_bytes=2000)
    big, other = connect(ws_url(relay)), connect(ws_url(relay))
    big.send_raw(json.dumps(["EVENT", signed(content="x" * 3000).to_json()]))
    assert big.recv() == ["NOTICE", "error: closing connection: message larger than 2000 bytes"]
    assert close_code(big.ws) == 1009
    event = signed()
    assert other.publish(event) == ["OK", event.id, True, ""]
    assert other.req("s", {"ids": [event.id]}) == [event.to_json()]
    assert relay.store.count() == 1


def test_s10_1_message_of_exactly_the_limit_is_accepted(start_relay, connect):
    relay = start_relay(max_message_bytes=2000)
    client = connect(ws_url(relay))
    text = json.dumps(["REQ", "s", {}])
    client.send_raw(text[:-1] + " " * (2000 - len(text)) + "]")
    assert client.recv() == ["EOSE", "s"]


def test_s10_1_size_limit_counts_all_fragments_of_a_message(start_relay, connect):
    relay = start_relay(max_message_bytes=2000)
    client = connect(ws_url(relay))
    ws = client.ws
    ws.send_frame(
        websocket.ABNF.create_frame('["REQ","frag",{}', websocket.ABNF.OPCODE_TEXT, fin=0)
    )
    ws.send_frame(websocket.ABNF.create_frame("]", websocket.ABNF.OPCODE_CONT, fin=1))
    assert client.recv() == ["EOSE", "frag"]
    for _ in range(3):
        ws.send_frame(
            websocket.ABNF.create_frame(
                " " * 900, websocket.ABNF.OPCODE_CONT if _ else websocket.ABNF.OPCODE_TEXT, fin=0
            )
        )
    assert client.recv()[0] == "NOTICE"
    assert close_code(ws) == 1009


def test_ping_is_answered_with_pong(start_relay, connect):
    client = connect(ws_url(start_relay()))
    client.ws.ping("are you there")
    opcode, frame = client.ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"are you there"


def test_client_close_is_answered_and_the_connection_is_released(start_relay, connect):
    relay = start_relay()
    client = connect(ws_url(relay))
    client.req("s", {})
    client.ws.send_close(websocket.STATUS_NORMAL, b"bye")
    assert close_code(client.ws) == 1000
    assert relay.server.websocket_connections.wait_empty(5)
    assert relay.hub.count() == 0


def test_protocol_error_closes_with_1002(start_relay, connect):
    relay = start_relay()
    client = connect(ws_url(relay))
    client.ws.sock.sendall(b"\x81\x02hi")  # an unmasked client frame is a protocol error
    assert close_code(client.ws) == 1002
    assert relay.server.websocket_connections.wait_empty(5)


def test_frames_sent_right_behind_the_handshake_are_not_lost(start_relay, connect):
    relay = start_relay()
    raw = RawClient(relay.port, first_frames=RawClient.frame('["REQ","early",{}]'))
    event = raw.next_event()
    assert isinstance(event, TextMessage) and json.loads(event.data) == ["EOSE", "early"]
    raw.close()


def test_idle_client_is_pinged_and_kept_while_it_answers(start_relay, connect):
    # The client answers from this test's process, which shares the suite's 2 cores: at a
    # 0.1 s interval (cut-off 0.2 s) one scheduling stall of the process dropped it (seen in a
    # clean-clone run). 0.5 s keeps five pings within 2.5 s and tolerates stalls up to ~0.5 s.
    relay = start_relay(ping_interval_secs=0.5)
    raw = RawClient(relay.port)
    pings = 0
    while pings < 5:  # 5 intervals: long past the 2-interval cut-off for a silent client
        event = raw.next_event()
        assert isinstance(event, Ping)
        pings += 1
        raw.sock.sendall(raw.ws.send(event.response()))
    raw.send("REQ", "still-here", {})
    assert json.loads(raw.next_event().data) == ["EOSE", "still-here"]
    raw.close()


def test_client_that_never_answers_pings_is_dropped(start_relay, connect):
    relay = start_relay(ping_interval_secs=0.1)
    raw = RawClient(relay.port)
    started = time.monotonic()
    assert relay.server.websocket_connections.wait_empty(5)
    assert time.monotonic() - started < 2
    raw.close()


def test_slow_consumer_is_disconnected_without_stalling_fan_out(start_relay, connect, caplog):
    """A subscriber that stops reading fills its bounded outbox and is dropped; others get all."""
    caplog.set_level(logging.WARNING, logger="grasp.relay.transport.connection")
    relay = start_relay(outbox_chars=64 * 1024, close_timeout_secs=0.5)
    slow = websocket.create_connection(
        ws_url(relay), timeout=5, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),)
    )
    slow.send(json.dumps(["REQ", "slow", {"kinds": [1]}]))
    assert json.loads(slow.recv()) == ["EOSE", "slow"]
    fast = connect(ws_url(relay))
    fast.req("fast", {"kinds": [1]})

    padding = "p" * 16 * 1024
    switches_in_publish = 0

    def count_switches(event: str, args: tuple) -> None:
        nonlocal switches_in_publish
        switches_in_publish += event in ("switch", "throw")

    for n in range(2000):  # bounded: at most ~32 MB offered to the slow client
        event = signed(content=f"{n} {padding}")
        previous = greenlet.settrace(count_switches)
        try:
            relay.hub.publish(event)
        finally:
            greenlet.settrace(previous)
        assert fast.expect("EVENT")[2]["id"] == event.id
        if len(relay.server.websocket_connections) == 1:
            break
    else:
        pytest.fail("the slow client was never disconnected")
    # publish only enqueues: it never waits for a socket, so it never leaves the greenlet
    # (a wait would be a switch to the hub), however full the slow client's outbox is
    assert switches_in_publish == 0
    assert "disconnecting slow client" in caplog.text
    assert relay.hub.count() == 1
    slow.close()


def test_graceful_shutdown_closes_websockets_with_1001(tmp_path):
    relay = in_process_relay(tmp_path, WebSocketLimits(close_timeout_secs=1))
    client = Client(ws_url(relay))
    client.req("s", {})
    shutting = gevent.spawn(relay.shutdown, 3)
    assert close_code(client.ws) == 1001
    client.ws.send_close()
    shutting.join(5)
    assert shutting.successful()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", relay.port), timeout=1)


def test_http_requests_are_served_next_to_open_websockets(start_relay, connect):
    relay = start_relay()
    client = connect(ws_url(relay))
    client.req("s", {})
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nAccept: application/nostr+json\r\n"
            b"Connection: close\r\n\r\n"
        )
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, body = response.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["supported_nips"] == [1, 11, 34, 77]
    assert client.req("again", {}) == []
