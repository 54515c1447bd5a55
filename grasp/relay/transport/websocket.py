"""The websocket upgrade on gevent.pywsgi: handshake checks and a small WSGIHandler subclass.

Routing stays in the WSGI application. For an upgrade request the handler puts a
:class:`WebSocketUpgrade` into the environ (``environ[UPGRADE_KEY]``); the application decides
whether this path speaks websocket and, if so, calls :meth:`WebSocketUpgrade.accept` with the
listener factory and limits, returning its (empty) body. Instead of writing an HTTP response the
handler then sends ``101 Switching Protocols`` and serves the connection on its own greenlet
(python-ecosystem.md §3, variant C: no extra thread, bytes buffered during the handshake are read
through ``rfile`` and not lost). Any other answer (404, 400) is sent as plain HTTP.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import socket
from collections.abc import Iterator, Mapping

import gevent.event
from gevent.pywsgi import WSGIHandler, WSGIServer

from grasp.relay.transport.connection import ListenerFactory, WebSocketConnection, WebSocketLimits

logger = logging.getLogger(__name__)

UPGRADE_KEY = "grasp.websocket"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WEBSOCKET_VERSION = "13"


def is_websocket_request(environ: Mapping[str, object]) -> bool:
    """An HTTP request asking to switch to the websocket protocol (RFC 6455 §4.2.1)."""
    upgrade = str(environ.get("HTTP_UPGRADE", "")).lower()
    connection = str(environ.get("HTTP_CONNECTION", "")).lower()
    return upgrade == "websocket" and "upgrade" in {t.strip() for t in connection.split(",")}


def handshake_error(environ: Mapping[str, object]) -> str | None:
    """Why this upgrade request cannot be accepted, or None when it can."""
    if environ.get("REQUEST_METHOD") != "GET":
        return "websocket handshake must use GET"
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION") != WEBSOCKET_VERSION:
        return f"unsupported websocket version (this server speaks {WEBSOCKET_VERSION})"
    key = str(environ.get("HTTP_SEC_WEBSOCKET_KEY", ""))
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return "Sec-WebSocket-Key must be 16 bytes in base64"
    except (binascii.Error, ValueError):
        return "Sec-WebSocket-Key is not base64"
    return None


def accept_token(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client key (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


class WebSocketUpgrade:
    """Placed in the environ of upgrade requests; the application accepts through it."""

    def __init__(self) -> None:
        self.factory: ListenerFactory | None = None
        self.limits = WebSocketLimits()

    @property
    def accepted(self) -> bool:
        return self.factory is not None

    def accept(self, factory: ListenerFactory, limits: WebSocketLimits) -> list[bytes]:
        """Take the connection over; return the value as the WSGI response body."""
        self.factory = factory
        self.limits = limits
        return []


class WebSocketHandler(WSGIHandler):
    """gevent.pywsgi handler that can turn an accepted upgrade request into a websocket."""

    def get_environ(self):
        environ = super().get_environ()
        if is_websocket_request(environ):
            environ[UPGRADE_KEY] = WebSocketUpgrade()
        return environ

    def process_result(self) -> None:
        upgrade = self.environ.get(UPGRADE_KEY)
        factory = upgrade.factory if upgrade is not None else None
        if factory is None:  # not an upgrade, or the application did not accept it
            super().process_result()
            return
        self._serve_websocket(upgrade, factory)

    def _serve_websocket(self, upgrade: WebSocketUpgrade, factory: ListenerFactory) -> None:
        # Never reuse this TCP connection for HTTP again, whatever happens below.
        self.close_connection = True
        self._switch_protocols()
        # The writer coalesces queued frames itself; Nagle would only add delayed-ACK stalls.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host, port = (
            self.client_address[:2]
            if isinstance(self.client_address, tuple)
            else (self.client_address, "")
        )
        connection = WebSocketConnection(self.socket, self.rfile, upgrade.limits, f"{host}:{port}")
        registry = getattr(self.server, "websocket_connections", None)
        if registry is not None:
            registry.add(connection)
        try:
            connection.run(factory)
        finally:
            if registry is not None:
                registry.discard(connection)

    def _switch_protocols(self) -> None:
        key = str(self.environ["HTTP_SEC_WEBSOCKET_KEY"])
        head = (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_token(key)}\r\n\r\n"
        ).encode("latin-1")
        self.socket.sendall(head)
        # Bookkeeping so pywsgi's access log and error handling see a sent 101 response.
        self.status = b"101 Switching Protocols"
        self._orig_status = "101 Switching Protocols"
        self.code = 101
        self.headers_sent = True
        self.response_length = len(head)


class ConnectionRegistry:
    """The open websocket connections of a server, with a way to wait until none is left."""

    def __init__(self) -> None:
        self._connections: set[WebSocketConnection] = set()
        self._empty = gevent.event.Event()
        self._empty.set()

    def add(self, connection: WebSocketConnection) -> None:
        self._connections.add(connection)
        self._empty.clear()

    def discard(self, connection: WebSocketConnection) -> None:
        self._connections.discard(connection)
        if not self._connections:
            self._empty.set()

    def __len__(self) -> int:
        return len(self._connections)

    def __iter__(self) -> Iterator[WebSocketConnection]:
        return iter(list(self._connections))

    def wait_empty(self, timeout: float) -> bool:
        """Block until every connection has ended or ``timeout`` passed; True when empty."""
        return self._empty.wait(timeout)


class RelayWSGIServer(WSGIServer):
    """WSGIServer with the websocket handler and a registry of open websocket connections.

    The registry lets a graceful shutdown close every websocket with 1001 (going away) before
    the server stops waiting for handlers.
    """

    handler_class = WebSocketHandler

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.websocket_connections = ConnectionRegistry()
