"""One websocket to a peer (S17.2, S17.4): receive with keepalive, recognise what ends it.

The frames themselves are read by the sync sources' bounded socket
(:class:`~grasp.relay.sync_sources.wire.BoundedWebSocket`: no message takes more than
``max_message_bytes``). What is added here is what peer health needs to tell failures apart:

* a ``rate-limited:`` text in ``CLOSED``, ``NOTICE`` or ``OK`` raises :class:`RateLimited`
  (a cool-down, S17.4);
* a peer that sends only garbage — :data:`GARBAGE_LIMIT` frames that are not NIP-01 messages
  before a single usable one — raises :class:`PeerGarbage` (the naughty list);
* silence for two ping intervals raises ``SourceGone`` (a plain backoff).
"""

from __future__ import annotations

import logging
import time

import gevent
import websocket

from grasp.relay.sync_sources.wire import (
    BoundedWebSocket,
    FrameError,
    MessageSkipped,
    RelayMessage,
    SourceGone,
    close_frame_text,
    parse_relay_message,
)

logger = logging.getLogger(__name__)

__all__ = ["GARBAGE_LIMIT", "PeerGarbage", "PeerLink", "RateLimited"]

GARBAGE_LIMIT = 20
#: A receive returns after this long without a message, so a session notices at once that what
#: we host changed; pings still go only after ``ping_interval`` of silence.
POLL_SECS = 1.0
_YIELD_EVERY = 32


class RateLimited(Exception):
    """The peer asked us to slow down (``rate-limited:``)."""


class PeerGarbage(Exception):
    """The peer does not speak NIP-01 (protocol failure)."""


class PeerLink:
    """Receive side of one peer connection, with its counters."""

    def __init__(self, url: str, ws: BoundedWebSocket, ping_interval: float) -> None:
        self.url = url
        self.ws = ws
        self.ping_interval = ping_interval
        self._pinged_at = 0.0
        ws.settimeout(POLL_SECS)  # the session looks at what changed between two receives
        self.invalid = 0
        self.usable = 0
        self._last_received = time.monotonic()
        self._frames = 0

    def send(self, *frame: object) -> None:
        self.ws.send_message(*frame)

    def receive(self) -> RelayMessage | None:
        """The next usable message, or None after a timeout or a dropped frame."""
        try:
            opcode, frame = self.ws.recv_data_frame(control_frame=True)
        except websocket.WebSocketTimeoutException:
            self._keepalive()
            return None
        except MessageSkipped as exc:
            self.dropped(str(exc))
            return None
        self._last_received = time.monotonic()
        self._frames += 1
        if self._frames % _YIELD_EVERY == 0:
            gevent.sleep(0)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise SourceGone(f"peer closed the connection{close_frame_text(frame.data)}")
        if opcode != websocket.ABNF.OPCODE_TEXT:
            if opcode == websocket.ABNF.OPCODE_BINARY:
                self.dropped("binary message")
            return None
        try:
            message = parse_relay_message(frame.data.decode("utf-8"))
        except (UnicodeDecodeError, FrameError) as exc:
            self.dropped(str(exc))
            return None
        self.usable += 1
        if message.verb in ("CLOSED", "NOTICE", "OK") and "rate-limited:" in message.text:
            raise RateLimited(f"{message.verb} {message.text[:200]}")
        return message

    def dropped(self, why: str) -> None:
        """A frame that could not be used; only garbage and nothing else is a protocol failure."""
        self.invalid += 1
        logger.debug("peer %s: dropped %s", self.url, why)
        if self.invalid >= GARBAGE_LIMIT and self.usable == 0:
            raise PeerGarbage(f"{self.invalid} frames that are not NIP-01 messages ({why})")

    def _keepalive(self) -> None:
        now = time.monotonic()
        idle = now - self._last_received
        if idle >= 2 * self.ping_interval:
            raise SourceGone(f"no data from the peer for {idle:.0f} s")
        if idle >= self.ping_interval and now - self._pinged_at >= self.ping_interval:
            self._pinged_at = now
            self.ws.ping()
