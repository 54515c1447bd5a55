"""The wire format of negentropy protocol version 1 (NIP-77 appendix; S17.3).

Everything here is pure and standard-library only. A message is a version byte (``0x61``)
followed by ranges; a range is an upper *bound*, a *mode* varint and a payload. Bounds carry a
delta-encoded timestamp (``0`` = infinity, otherwise ``1 + offset`` from the previous bound of the
same message) and a 0..32-byte id prefix.

Decoding is the part a hostile peer reaches, so every defect raises :class:`NegentropyError`
with a specific reason (truncated varint, oversized varint, bad mode, bad prefix length,
descending bounds) that the relay sends verbatim after ``invalid:`` in a ``NEG-ERR``.
Varints are capped at 64 bits (10 bytes): Python integers are unbounded, and a peer must not make
us build a million-digit number.
"""

from __future__ import annotations

from enum import IntEnum

PROTOCOL_VERSION = 0x61
#: Any byte in this range is "a negentropy version"; outside it the message is not negentropy.
VERSION_RANGE = range(0x60, 0x70)
ID_SIZE = 32
FINGERPRINT_SIZE = 16
MAX_U64 = 2**64 - 1
#: The reserved "infinity" timestamp that ends the last range of every message.
INFINITY = MAX_U64
MAX_VARINT_BYTES = 10

#: A range bound: (timestamp, id prefix of 0..32 bytes). Items are (timestamp, 32-byte id)
#: tuples, so Python's tuple and bytes ordering is exactly the protocol's item/bound ordering.
Bound = tuple[int, bytes]
MIN_BOUND: Bound = (0, b"")
INFINITE_BOUND: Bound = (INFINITY, b"")


class Mode(IntEnum):
    """What the payload of a range is."""

    SKIP = 0
    FINGERPRINT = 1
    ID_LIST = 2


class NegentropyError(ValueError):
    """A malformed or unsupported negentropy message.

    :attr:`reason` is short human text without a prefix (NIP-77 ``NEG-ERR`` adds ``invalid:``).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode_varint(value: int) -> bytes:
    """Base-128, most significant digit first, high bit set on every byte but the last."""
    if value < 0:
        raise ValueError(f"varint of a negative number: {value}")
    out = bytearray([value & 0x7F])
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.reverse()
    return bytes(out)


class BoundWriter:
    """Encodes the bounds of one outgoing message (timestamps are deltas within a message)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = 0

    def encode(self, bound: Bound) -> bytes:
        timestamp, prefix = bound
        if timestamp == INFINITY:
            self._last = INFINITY
            encoded = encode_varint(0)
        else:
            encoded = encode_varint(timestamp - self._last + 1)
            self._last = timestamp
        return encoded + encode_varint(len(prefix)) + prefix

    def range_header(self, bound: Bound, mode: Mode) -> bytes:
        return self.encode(bound) + encode_varint(mode)


class MessageReader:
    """A cursor over one incoming message; every read checks the bytes are really there."""

    __slots__ = ("_data", "_last_key", "_last_timestamp", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._last_timestamp = 0
        self._last_key: Bound = MIN_BOUND

    def at_end(self) -> bool:
        return self._pos >= len(self._data)

    def version(self) -> int:
        """The protocol version byte; NegentropyError when absent or not a negentropy version."""
        if not self._data:
            raise NegentropyError("empty message (no protocol version byte)")
        version = self._data[0]
        self._pos = 1
        if version not in VERSION_RANGE:
            raise NegentropyError(f"invalid protocol version byte 0x{version:02x}")
        return version

    def take(self, count: int, what: str) -> bytes:
        end = self._pos + count
        if end > len(self._data):
            raise NegentropyError(
                f"truncated {what}: {count} bytes needed, {len(self._data) - self._pos} left"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def varint(self, what: str = "varint") -> int:
        value = 0
        for _ in range(MAX_VARINT_BYTES):
            if self._pos >= len(self._data):
                raise NegentropyError(f"truncated varint ({what})")
            byte = self._data[self._pos]
            self._pos += 1
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                if value > MAX_U64:
                    raise NegentropyError(f"varint ({what}) exceeds 64 bits")
                return value
        raise NegentropyError(f"varint ({what}) longer than {MAX_VARINT_BYTES} bytes")

    def bound(self) -> Bound:
        """The next upper bound; refuses a prefix over 32 bytes and a bound below the last one.

        Timestamps saturate at infinity like the reference (an offset past 2^64 - 1, or any
        bound after an infinite one, is infinity). A bound equal to the previous one (an empty
        range) is tolerated; a lower one can only come from a broken or hostile peer.
        """
        raw = self.varint("bound timestamp")
        if raw == 0 or self._last_timestamp == INFINITY:
            timestamp = INFINITY
        else:
            timestamp = min(self._last_timestamp + raw - 1, INFINITY)
        self._last_timestamp = timestamp
        length = self.varint("bound prefix length")
        if length > ID_SIZE:
            raise NegentropyError(f"bound id prefix of {length} bytes (at most {ID_SIZE})")
        prefix = self.take(length, "bound id prefix")
        # Omitted trailing bytes are implicit zeros, so trailing zeros do not change the order.
        key = (timestamp, prefix.rstrip(b"\0"))
        if key < self._last_key:
            raise NegentropyError("bounds must ascend: a range ends below the previous one")
        self._last_key = key
        return timestamp, prefix

    def mode(self) -> Mode:
        value = self.varint("mode")
        try:
            return Mode(value)
        except ValueError:
            raise NegentropyError(
                f"unknown range mode {value} (0 skip, 1 fingerprint, 2 id list)"
            ) from None

    def fingerprint(self) -> bytes:
        return self.take(FINGERPRINT_SIZE, "fingerprint")

    def id_list(self) -> list[bytes]:
        count = self.varint("id list length")
        if count * ID_SIZE > len(self._data) - self._pos:
            raise NegentropyError(
                f"truncated id list: {count} ids announced, "
                f"{(len(self._data) - self._pos) // ID_SIZE} present"
            )
        blob = self.take(count * ID_SIZE, "id list")
        return [blob[i : i + ID_SIZE] for i in range(0, len(blob), ID_SIZE)]
