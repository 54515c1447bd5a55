"""The wire side of a sync-source connection (S10.7): a memory-bounded websocket-client socket
and the parsing of the relay-to-client NIP-01 messages a source sends.

Why a bounded socket: websocket-client reads a frame's *declared* length straight into memory
and joins continuation frames without limit, so a broken or hostile source could make us
allocate gigabytes. :class:`BoundedWebSocket` discards the payload of a data frame above
``max_message_bytes`` while reading it (resumable across read timeouts) and drops a fragmented
message once it grows past the bound; either way the receiver gets :class:`MessageSkipped` and
the connection stays usable. Skipping instead of disconnecting matters: the oversized message is
usually one stored event, and a reconnect would replay the same history and hit it again forever.

UTF-8 validation is left to ``bytes.decode`` (C speed); websocket-client's own validator is pure
Python unless the optional ``wsaccel`` is installed, which would cost the hub ~100 ms per 512 KiB.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websocket
from websocket import ABNF, continuous_frame, frame_buffer

__all__ = [
    "BoundedWebSocket",
    "FrameError",
    "MessageSkipped",
    "RelayMessage",
    "SourceGone",
    "close_frame_text",
    "describe_error",
    "parse_relay_message",
]

_DATA_OPCODES = (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT)
_DISCARD_CHUNK = 64 * 1024


class MessageSkipped(Exception):
    """A message larger than the bound was read and thrown away; the connection is still fine."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes skipped (limit {limit})")
        self.size = size


class _BoundedFrameBuffer(frame_buffer):
    """Reads frames like websocket-client does, but never holds an oversized payload."""

    def __init__(self, recv_fn: Callable[[int], bytes], max_bytes: int) -> None:
        super().__init__(recv_fn, skip_utf8_validation=True)
        self.max_bytes = max_bytes
        self._discard_left: int | None = None

    def recv_frame(self) -> ABNF:
        # Header and length are remembered across read timeouts, so this resumes correctly.
        if self.needs_header():
            self.recv_header()
        if self.needs_length():
            self.recv_length()
        assert self.header is not None and self.length is not None
        if self.length <= self.max_bytes:
            return super().recv_frame()
        fin, opcode = self.header[0], self.header[4]
        if opcode not in _DATA_OPCODES:
            raise websocket.WebSocketProtocolException(f"control frame of {self.length} bytes")
        if self.needs_mask():
            self.recv_mask()
        if self._discard_left is None:
            self._discard_left = self.length
        while self._discard_left > 0:
            self._discard_left -= len(self.recv_strict(min(_DISCARD_CHUNK, self._discard_left)))
        size = self.length
        self.clear()
        self._discard_left = None
        frame = ABNF(fin, 0, 0, 0, opcode, 0, b"")
        frame.oversized = size  # type: ignore[attr-defined]  # read by _BoundedMessage.add
        return frame


class _BoundedMessage(continuous_frame):
    """Joins fragments like websocket-client does, up to a bound; beyond it only counts bytes."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(fire_cont_frame=False, skip_utf8_validation=True)
        self.max_bytes = max_bytes
        self._skipped: int | None = None

    def add(self, frame: ABNF) -> None:
        held = len(self.cont_data[1]) if self.cont_data else 0
        size = getattr(frame, "oversized", None) or len(frame.data)
        if self._skipped is None and held + size > self.max_bytes:
            self._skipped = held
            if self.cont_data:
                self.cont_data[1] = b""
        if self._skipped is not None:
            self._skipped += size
            frame.data = b""
        super().add(frame)

    def extract(self, frame: ABNF) -> tuple:
        result = super().extract(frame)
        if self._skipped is not None:
            size, self._skipped = self._skipped, None
            raise MessageSkipped(size, self.max_bytes)
        return result


class BoundedWebSocket(websocket.WebSocket):
    """``websocket.WebSocket`` whose messages never take more than ``max_message_bytes`` of memory.

    Only one greenlet ever uses a sync-source socket, so websocket-client's send/receive locks
    are switched off (``enable_multithread=False``).
    """

    def __init__(self, max_message_bytes: int, **options: Any) -> None:
        options.setdefault("enable_multithread", False)
        super().__init__(skip_utf8_validation=True, **options)
        self.max_message_bytes = max_message_bytes
        self.frame_buffer = _BoundedFrameBuffer(self._recv, max_message_bytes)
        self.cont_frame = _BoundedMessage(max_message_bytes)

    def send_message(self, *frame: Any) -> None:
        """Send one NIP-01 client message, e.g. ``send_message("REQ", sub_id, filter)``."""
        self.send(json.dumps(list(frame), separators=(",", ":"), ensure_ascii=False))

    def close_quietly(self) -> None:
        """Send a close frame if we still can (waiting at most 1 s), then drop the socket."""
        try:
            if self.connected and self.sock is not None:
                self.sock.settimeout(1.0)
                self.send_close()
        except Exception:  # the peer is gone or stuck; we are leaving anyway
            pass
        self.shutdown()


class SourceGone(Exception):
    """The connection ended or became unusable; the text is the status page's ``last_error``."""


def close_frame_text(data: bytes) -> str:
    """`` (1001 going away)`` from a close frame's payload, or ``""`` when it has no code."""
    if len(data) < 2:
        return ""
    code = int.from_bytes(data[:2], "big")
    reason = data[2:].decode("utf-8", "replace")
    return f" ({code}{' ' + reason if reason else ''})"


def describe_error(exc: BaseException) -> str:
    """A short ``last_error`` for why a connection failed or ended."""
    if isinstance(exc, SourceGone):
        return str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, websocket.WebSocketConnectionClosedException):
        return "connection lost"
    if isinstance(exc, websocket.WebSocketBadStatusException):
        return f"handshake refused: HTTP {exc.status_code} {exc.status_message or ''}".rstrip()
    text = str(exc) or type(exc).__name__
    text = (
        text if isinstance(exc, websocket.WebSocketException) else f"{type(exc).__name__}: {text}"
    )
    return text[:300]


class FrameError(ValueError):
    """A text message from the source that is not a NIP-01 relay message we can use."""


@dataclass(frozen=True)
class RelayMessage:
    """One relay-to-client message (protocol.md §1.5).

    ``sub_id`` is set for EVENT, EOSE and CLOSED; ``event`` is the raw (unvalidated) event object
    of an EVENT; ``text`` the human text of CLOSED and NOTICE. Verbs we do not use (OK, AUTH,
    COUNT, ...) are returned with just ``verb`` so the caller can log and ignore them; ``OK``,
    ``NEG-MSG`` and ``NEG-ERR`` also carry the whole decoded array as ``frame`` (peers read a
    ``rate-limited:`` OK and the NIP-77 replies, S17.3, S17.4).
    """

    verb: str
    sub_id: str | None = None
    event: Any = None
    text: str = ""
    frame: Any = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_relay_message(text: str) -> RelayMessage:
    """Parse one text message; raise :class:`FrameError` saying what is wrong with it."""
    try:
        message = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise FrameError(f"not JSON ({exc})") from None
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise FrameError("not a JSON array starting with a message type")
    verb = message[0]
    if verb in ("EVENT", "EOSE", "CLOSED"):
        if len(message) < 2 or not isinstance(message[1], str):
            raise FrameError(f"{verb} without a subscription id")
        if verb == "EVENT":
            if len(message) != 3:
                raise FrameError('EVENT must be ["EVENT", <subscription id>, <event>]')
            return RelayMessage(verb, message[1], event=message[2])
        return RelayMessage(verb, message[1], text=_text(message, 2))
    if verb == "NOTICE":
        return RelayMessage(verb, text=_text(message, 1))
    if verb in ("OK", "NEG-MSG", "NEG-ERR"):
        sub_id = message[1] if len(message) > 1 and isinstance(message[1], str) else None
        return RelayMessage(verb, sub_id, text=_text(message, len(message) - 1), frame=message)
    return RelayMessage(verb)


def _text(message: list[Any], index: int) -> str:
    value = message[index] if len(message) > index else ""
    return value if isinstance(value, str) else json.dumps(value)[:200]
