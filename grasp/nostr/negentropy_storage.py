"""The sorted item set one side of a negentropy reconciliation holds (S17.3).

Items are ``(timestamp, 32-byte id)``, sorted by timestamp then id, and *sealed* before use:
after :meth:`NegentropyStorage.seal` the set is immutable, which is what lets a range's
fingerprint be answered in O(1) from prefix sums instead of re-adding every id of the range.

The layout is compact on purpose: a relay may hold up to eight sessions per connection of up
to 100,000 records each, so ids live in one ``bytes`` blob (32 B each), the running id sums in
another (32 B each) and timestamps in an ``array('Q')`` — about 72 B per record.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from array import array
from collections.abc import Iterable, Iterator

from grasp.nostr.negentropy_codec import (
    FINGERPRINT_SIZE,
    ID_SIZE,
    INFINITY,
    Bound,
    encode_varint,
)

_MOD = 2**256


def fingerprint_of(id_sum: int, count: int) -> bytes:
    """First 16 bytes of sha256(sum of ids as little-endian 256-bit ints mod 2^256 || varint(n))."""
    digest = hashlib.sha256((id_sum % _MOD).to_bytes(ID_SIZE, "little") + encode_varint(count))
    return digest.digest()[:FINGERPRINT_SIZE]


class _ItemView:
    """A read-only sequence of ``(timestamp, id)`` over the sealed arrays, for :mod:`bisect`."""

    __slots__ = ("_ids", "_timestamps")

    def __init__(self, timestamps: array, ids: bytes) -> None:
        self._timestamps = timestamps
        self._ids = ids

    def __len__(self) -> int:
        return len(self._timestamps)

    def __getitem__(self, index: int) -> tuple[int, bytes]:
        start = index * ID_SIZE
        return self._timestamps[index], self._ids[start : start + ID_SIZE]


class NegentropyStorage:
    """Insert items, :meth:`seal`, then hand to :class:`grasp.nostr.negentropy.Negentropy`."""

    def __init__(self) -> None:
        self._pending: list[tuple[int, bytes]] | None = []
        self._timestamps = array("Q")
        self._ids = b""
        self._sums = bytes(ID_SIZE)
        self._view = _ItemView(self._timestamps, self._ids)

    @classmethod
    def from_items(cls, items: Iterable[tuple[int, bytes]]) -> NegentropyStorage:
        """A sealed storage of ``(timestamp, id)`` items."""
        storage = cls()
        for timestamp, item_id in items:
            storage.insert(timestamp, item_id)
        storage.seal()
        return storage

    @classmethod
    def from_hex_items(cls, items: Iterable[tuple[int, str]]) -> NegentropyStorage:
        """A sealed storage of ``(created_at, event id hex)`` items, as a Nostr store has them."""
        return cls.from_items((timestamp, bytes.fromhex(hex_id)) for timestamp, hex_id in items)

    @property
    def sealed(self) -> bool:
        return self._pending is None

    def insert(self, timestamp: int, item_id: bytes) -> None:
        """Add one item; ValueError for a sealed storage, a bad id or a reserved timestamp."""
        if self._pending is None:
            raise ValueError("negentropy storage is sealed")
        if not isinstance(timestamp, int) or not 0 <= timestamp < INFINITY:
            raise ValueError(f"timestamp {timestamp!r} out of range 0..2^64-2")
        if not isinstance(item_id, bytes) or len(item_id) != ID_SIZE:
            raise ValueError(f"item id must be {ID_SIZE} bytes")
        self._pending.append((timestamp, item_id))

    def seal(self) -> None:
        """Sort, refuse duplicates and build the prefix sums; no insert afterwards."""
        if self._pending is None:
            raise ValueError("negentropy storage is already sealed")
        items = sorted(self._pending)
        self._pending = None
        for previous, current in itertools.pairwise(items):
            if previous == current:
                raise ValueError(f"duplicate item {current[1].hex()} at {current[0]}")
        self._timestamps = array("Q", (timestamp for timestamp, _ in items))
        self._ids = b"".join(item_id for _, item_id in items)
        sums = bytearray(bytes(ID_SIZE))
        running = 0
        for _, item_id in items:
            running = (running + int.from_bytes(item_id, "little")) % _MOD
            sums += running.to_bytes(ID_SIZE, "little")
        self._sums = bytes(sums)
        self._view = _ItemView(self._timestamps, self._ids)

    def __len__(self) -> int:
        self._check_sealed()
        return len(self._timestamps)

    def item(self, index: int) -> tuple[int, bytes]:
        self._check_sealed()
        return self._view[index]

    def ids(self, lower: int, upper: int) -> Iterator[bytes]:
        """The ids of items ``lower .. upper - 1`` in order."""
        blob = self._ids
        for start in range(lower * ID_SIZE, upper * ID_SIZE, ID_SIZE):
            yield blob[start : start + ID_SIZE]

    def id_blob(self, lower: int, upper: int) -> bytes:
        """The ids of items ``lower .. upper - 1`` concatenated, as an IdList payload has them."""
        return self._ids[lower * ID_SIZE : upper * ID_SIZE]

    def lower_bound(self, bound: Bound, lower: int, upper: int) -> int:
        """Index of the first item in ``lower .. upper`` that is not below ``bound``."""
        self._check_sealed()
        return bisect.bisect_left(self._view, bound, lower, upper)

    def fingerprint(self, lower: int, upper: int) -> bytes:
        """The fingerprint of items ``lower .. upper - 1`` (O(1): difference of prefix sums)."""
        self._check_sealed()
        if not 0 <= lower <= upper <= len(self._timestamps):
            raise IndexError(f"bad range {lower}..{upper} of {len(self._timestamps)} items")
        total = self._sum_before(upper) - self._sum_before(lower)
        return fingerprint_of(total, upper - lower)

    def _sum_before(self, index: int) -> int:
        start = index * ID_SIZE
        return int.from_bytes(self._sums[start : start + ID_SIZE], "little")

    def _check_sealed(self) -> None:
        if self._pending is not None:
            raise ValueError("negentropy storage is not sealed yet")
