"""One websocket connection on gevent: a reader loop, a writer greenlet and a bounded outbox.

Why this shape (python-ecosystem.md §3, variant C):

* The handler's own greenlet reads: ``rfile.read1`` -> wsproto -> the listener (the NIP-01 session).
  Everything the listener does for its client (query results, OK, EOSE) happens on that greenlet.
* Exactly one writer greenlet drains the outbox into the socket, so sends to one connection are
  serialised without a lock, and wsproto's (non re-entrant) ``send`` is only ever called there.
* The outbox is bounded in queued text. Two ways in:
  :meth:`send` is for the connection's own greenlet and waits while the outbox is above half its
  budget (natural backpressure: we stop reading from a client that does not read);
  :meth:`offer` is for everyone else (live fan-out) and never blocks: when the outbox is full the
  client is too slow, gets a farewell text (best effort) and is disconnected. One slow client can
  therefore neither stall the hub nor grow memory without bound. The half reserved for offers
  keeps a client that is receiving a large REQ answer from being dropped by the live events that
  arrive meanwhile.
* Keepalive needs no extra greenlet: the writer waits on the outbox with a timeout of one ping
  interval; when nothing was received for one interval it pings, after two it gives up.
"""

from __future__ import annotations

import itertools
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import gevent
import gevent.event
import gevent.queue
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Message, Ping, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

logger = logging.getLogger(__name__)

KIB = 1024
READ_CHUNK = 64 * KIB
WRITE_BATCH = 256 * KIB
_STOP = object()
_ids = itertools.count(1)


@dataclass(frozen=True)
class WebSocketLimits:
    """Per-connection bounds; the defaults suit a public relay (S10.1 for the message size)."""

    max_message_bytes: int = 512 * KIB
    #: Budget of queued outbound text (counted in characters, ~bytes for JSON); offers past it
    #: disconnect the client, the connection's own sends wait once half of it is used.
    outbox_chars: int = 8 * 1024 * KIB
    #: How long the connection's own greenlet waits for outbox room before giving up on the client.
    send_wait_secs: float = 30.0
    ping_interval_secs: float = 30.0
    #: Grace period for the closing handshake (and for a slow client to take its farewell).
    close_timeout_secs: float = 5.0


class MessageListener(Protocol):
    """What runs on top of a connection (the NIP-01 session)."""

    def on_text(self, text: str) -> None: ...

    def on_binary(self, data: bytes) -> None: ...

    def on_close(self) -> None: ...

    def farewell(self, reason: str) -> str | None:
        """A last text message to send (best effort) before the relay closes for ``reason``."""
        ...


ListenerFactory = Callable[["WebSocketConnection"], MessageListener]


class WebSocketConnection:
    """A server-side websocket after the 101 response; :meth:`run` serves it until it closes."""

    def __init__(self, sock: socket.socket, rfile, limits: WebSocketLimits, peer: str) -> None:
        self.id = next(_ids)
        self.peer = peer
        self.limits = limits
        self._sock = sock
        self._rfile = rfile
        self._ws = Connection(ConnectionType.SERVER)
        self._queue: gevent.queue.Queue = gevent.queue.Queue()
        self._queued_chars = 0
        self._soft_limit = max(limits.outbox_chars // 2, 1)
        self._room = gevent.event.Event()
        self._room.set()
        self._closing = False
        self._abort_timer: gevent.Greenlet | None = None
        self._last_received = time.monotonic()
        self._fragments: list[str | bytes] = []
        self._fragment_bytes = 0
        self._listener: MessageListener | None = None

    def __repr__(self) -> str:
        return f"<WebSocketConnection {self.id} {self.peer}>"

    # --- sending -----------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once a close started; nothing more is accepted for sending."""
        return self._closing

    def send(self, text: str) -> bool:
        """Queue ``text``, waiting while the outbox is half full. For the connection's own greenlet.

        Returns False when the connection is closing (or was closed because the client stopped
        reading for ``send_wait_secs``); the caller may simply stop producing.
        """
        deadline = time.monotonic() + self.limits.send_wait_secs
        while not self._closing and self._queued_chars >= self._soft_limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._overflow(f"client read nothing for {self.limits.send_wait_secs:g} s")
                return False
            self._room.wait(remaining)
        if self._closing:
            return False
        self._put(TextMessage(data=text), len(text))
        return True

    def offer(self, text: str) -> bool:
        """Queue ``text`` without blocking; a full outbox disconnects the (too slow) client."""
        if self._closing:
            return False
        if self._queued_chars and self._queued_chars + len(text) > self.limits.outbox_chars:
            self._overflow(f"outbound queue full ({self._queued_chars} chars pending)")
            return False
        self._put(TextMessage(data=text), len(text))
        return True

    def close(self, code: int = CloseReason.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake; the socket is dropped if it does not finish in time."""
        if self._closing:
            return
        self._closing = True
        self._room.set()  # release a sender waiting for room: it will see _closing
        self._queue.put((CloseConnection(code=code, reason=reason), 0))
        self._abort_timer = gevent.spawn_later(self.limits.close_timeout_secs, self._abort)

    def _put(self, event: Event, size: int) -> None:
        self._queued_chars += size
        if self._queued_chars >= self._soft_limit:
            self._room.clear()
        self._queue.put((event, size))

    def _overflow(self, why: str) -> None:
        logger.warning("[ws %d %s] disconnecting slow client: %s", self.id, self.peer, why)
        self._discard_queued()
        self._close_with_farewell(CloseReason.POLICY_VIOLATION, "too slow", why)

    def _discard_queued(self) -> None:
        """Drop undelivered messages: the client is leaving and would never get them in time."""
        while True:
            try:
                self._queue.get_nowait()
            except gevent.queue.Empty:
                break
        self._queued_chars = 0
        self._room.set()

    def _close_with_farewell(self, code: int, reason: str, why: str) -> None:
        if self._closing:
            return
        text = self._listener.farewell(why) if self._listener is not None else None
        if text is not None:
            self._put(TextMessage(data=text), len(text))
        self.close(code, reason)

    # --- serving -----------------------------------------------------------------------------

    def run(self, factory: ListenerFactory) -> None:
        """Serve the connection on the calling greenlet until it is closed; never raises."""
        logger.debug("[ws %d %s] open", self.id, self.peer)
        writer = gevent.spawn(self._write_loop)
        try:
            self._listener = factory(self)
            self._read_loop()
        except Exception:
            logger.exception("[ws %d %s] connection failed", self.id, self.peer)
        finally:
            self._finish(writer)

    def _read_loop(self) -> None:
        while True:
            try:
                data = self._rfile.read1(READ_CHUNK)
            except OSError:
                return
            if not data:
                return
            self._last_received = time.monotonic()
            self._ws.receive_data(data)
            for event in self._ws.events():
                if not self._handle(event):
                    return

    def _handle(self, event: Event) -> bool:
        """React to one wsproto event; False ends the read loop."""
        if isinstance(event, Message):
            self._receive_fragment(event)
        elif isinstance(event, Ping):
            if not self._closing:
                self._put(event.response(), 0)
        elif isinstance(event, CloseConnection):
            return self._receive_close(event)
        return True

    def _receive_close(self, event: CloseConnection) -> bool:
        state = self._ws.state
        if state is ConnectionState.REMOTE_CLOSING:
            # The client closes: answer it (after what is already queued) and hang up.
            self._closing = True
            self._room.set()
            self._queue.put((event.response(), 0))
        elif state is not ConnectionState.CLOSED:
            # Not a close frame at all: wsproto reports a protocol error this way.
            logger.info("[ws %d %s] protocol error: %s", self.id, self.peer, event.reason)
            self.close(event.code, "protocol error")
        return False

    def _receive_fragment(self, event: Message) -> None:
        if self._closing:
            return  # draining input while the closing handshake runs
        data = event.data
        self._fragment_bytes += len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        if self._fragment_bytes > self.limits.max_message_bytes:
            self._fragments.clear()
            why = f"message larger than {self.limits.max_message_bytes} bytes"
            logger.info("[ws %d %s] %s", self.id, self.peer, why)
            self._close_with_farewell(CloseReason.MESSAGE_TOO_BIG, "message too big", why)
            return
        self._fragments.append(data)
        if event.message_finished:
            parts, self._fragments, self._fragment_bytes = self._fragments, [], 0
            self._deliver(event, parts)

    def _deliver(self, event: Message, parts: list) -> None:
        assert self._listener is not None
        try:
            if isinstance(event, TextMessage):
                self._listener.on_text("".join(parts))
            elif isinstance(event, BytesMessage):
                self._listener.on_binary(b"".join(parts))
        except Exception:
            logger.exception("[ws %d %s] listener failed", self.id, self.peer)
            self.close(CloseReason.INTERNAL_ERROR, "internal error")

    def _write_loop(self) -> None:
        interval = self.limits.ping_interval_secs
        while True:
            try:
                first = self._queue.get(timeout=interval)
            except gevent.queue.Empty:
                if not self._keepalive(interval):
                    return
                continue
            events, stop = self._take_batch(first)
            if events and not self._transmit(*events):
                return
            if stop:
                return

    def _take_batch(self, first: object) -> tuple[list[Event], bool]:
        """``first`` plus whatever else is queued (up to WRITE_BATCH chars): one sendall for all.

        Coalescing matters for REQ answers: hundreds of small frames would otherwise cost one
        syscall (and, without TCP_NODELAY, one delayed ACK) each.
        """
        events: list[Event] = []
        item, taken = first, 0
        while True:
            if item is _STOP:
                return events, True
            event, size = cast(tuple[Event, int], item)
            events.append(event)
            taken += size
            self._queued_chars -= size
            if taken >= WRITE_BATCH:
                break
            try:
                item = self._queue.get_nowait()
            except gevent.queue.Empty:
                break
        if self._queued_chars < self._soft_limit:
            self._room.set()
        return events, False

    def _transmit(self, *events: Event) -> bool:
        chunks = []
        for event in events:
            try:
                chunks.append(self._ws.send(event))
            except LocalProtocolError:
                pass  # e.g. data queued before a close that has gone out since: drop it
        try:
            self._sock.sendall(b"".join(chunks))
        except OSError as exc:
            logger.debug("[ws %d %s] send failed: %s", self.id, self.peer, exc)
            self._closing = True
            self._room.set()
            self._abort()
            return False
        return True

    def _keepalive(self, interval: float) -> bool:
        """Ping an idle client; drop it after two silent intervals. False stops the writer."""
        idle = time.monotonic() - self._last_received
        if idle >= 2 * interval:
            logger.info("[ws %d %s] no answer for %.0f s, dropping", self.id, self.peer, idle)
            self._closing = True
            self._abort()
            return False
        if idle >= interval and self._ws.state is ConnectionState.OPEN:
            return self._transmit(Ping())
        return True

    def _abort(self) -> None:
        """Hang up hard: unblocks the reader (EOF) and a writer stuck in sendall (error)."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _finish(self, writer: gevent.Greenlet) -> None:
        self._closing = True
        self._room.set()
        if self._listener is not None:
            try:
                self._listener.on_close()
            except Exception:
                logger.exception("[ws %d %s] listener on_close failed", self.id, self.peer)
        self._queue.put(_STOP)
        writer.join(timeout=self.limits.close_timeout_secs)
        if not writer.dead:
            self._abort()
            writer.kill(block=True, timeout=1)
        if self._abort_timer is not None:
            self._abort_timer.kill(block=False)
        logger.debug("[ws %d %s] closed", self.id, self.peer)
