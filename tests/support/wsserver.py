"""A small websocket server for tests: gevent.pywsgi does HTTP, wsproto does the frames.

This is python-ecosystem.md §3 variant C in test form, kept apart from ``grasp.relay`` on
purpose: tests of protocol layers (NIP-77) need a real websocket peer without depending on the
relay's transport. Each connection gets its own handler object from ``make_handler(send)``;
``handler.on_text(text)`` runs on the connection's greenlet, ``send(text)`` writes one frame.

    with TextSocketServer(lambda send: Echo(send)) as server:
        ws = websocket.create_connection(server.url)

``stop()`` (or leaving the ``with``) shuts every open connection down and stops the server.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
from collections.abc import Callable
from typing import Protocol

import gevent.lock
from gevent.pywsgi import WSGIHandler, WSGIServer
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Ping, TextMessage

logger = logging.getLogger(__name__)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 16 * 1024 * 1024


class TextHandler(Protocol):
    def on_text(self, text: str) -> None: ...

    def on_close(self) -> None: ...


Send = Callable[[str], None]
HandlerFactory = Callable[[Send], TextHandler]


class _UpgradeHandler(WSGIHandler):
    """Serves a websocket upgrade itself; anything else gets a 404 from the WSGI app."""

    def run_application(self) -> None:
        if self.environ.get("HTTP_UPGRADE", "").lower() != "websocket":
            super().run_application()
            return
        key = self.environ.get("HTTP_SEC_WEBSOCKET_KEY", "").encode("ascii")
        token = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode("ascii")
        self.socket.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {token}\r\n\r\n"
            ).encode("latin-1")
        )
        # Bookkeeping so pywsgi writes nothing more on this socket and logs a 101.
        self.status = b"101 Switching Protocols"
        self._orig_status = "101 Switching Protocols"
        self.code = 101
        self.headers_sent = True
        self.response_length = 0
        self.close_connection = True
        self.result: list[bytes] = []
        self.server.serve_websocket(self.socket, self.rfile)


class TextSocketServer:
    """A websocket server on 127.0.0.1, port chosen by the OS."""

    def __init__(self, make_handler: HandlerFactory) -> None:
        self._make_handler = make_handler
        self._server = WSGIServer(
            ("127.0.0.1", 0), self._not_found, handler_class=_UpgradeHandler, log=None
        )
        self._server.serve_websocket = self._serve  # type: ignore[attr-defined]
        self._sockets: set[socket.socket] = set()
        self.connections_served = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.server_port}"

    def start(self) -> TextSocketServer:
        self._server.start()
        return self

    def stop(self) -> None:
        for sock in list(self._sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.stop(timeout=5)

    def __enter__(self) -> TextSocketServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _not_found(environ: dict, start_response: Callable) -> list[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"websocket only\n"]

    def _serve(self, sock: socket.socket, rfile) -> None:
        self._sockets.add(sock)
        self.connections_served += 1
        conn = Connection(ConnectionType.SERVER)
        lock = gevent.lock.Semaphore()

        def send(text: str) -> None:
            with lock:
                sock.sendall(conn.send(TextMessage(data=text)))

        handler = self._make_handler(send)
        try:
            self._pump(sock, rfile, conn, handler, lock)
        except OSError as exc:
            logger.debug("test websocket connection ended: %s", exc)
        finally:
            handler.on_close()
            self._sockets.discard(sock)

    @staticmethod
    def _pump(sock, rfile, conn: Connection, handler: TextHandler, lock) -> None:
        parts: list[str] = []
        while True:
            data = rfile.read1(65536)
            if not data:
                return
            conn.receive_data(data)
            for event in conn.events():
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    if sum(map(len, parts)) > MAX_MESSAGE:
                        raise OSError("test websocket message too large")
                    if event.message_finished:
                        text, parts = "".join(parts), []
                        handler.on_text(text)
                elif isinstance(event, Ping):
                    with lock:
                        sock.sendall(conn.send(event.response()))
                elif isinstance(event, CloseConnection):
                    with lock:
                        sock.sendall(conn.send(event.response()))
                    return
