"""Negentropy protocol version 1: range-based set reconciliation for NIP-77 (S17.3).

Two sides each hold a sealed :class:`NegentropyStorage` of ``(timestamp, id)`` items. The
*initiator* (client) sends :meth:`Negentropy.initiate`, the *responder* (relay) answers each
message with :meth:`Negentropy.reconcile`, and the initiator feeds each answer to its own
``reconcile`` until that returns None. The initiator then knows :attr:`Negentropy.have_ids`
(it has, the peer lacks) and :attr:`Negentropy.need_ids` (the peer has, it lacks).

Splitting follows the reference implementation exactly — 16 buckets, an IdList below 32 items,
the same minimal bounds, the same frame-limit cut — so our messages are byte-for-byte what the
C++/JS/Rust implementations send for the same items (the interop tests compare them against
rust-nostr's relay). Frame-size limits count binary bytes; NIP-77 hex doubles them on the wire.

With a frame-size limit on either side a difference may be reported in more than one round;
the id sets simply absorb the repeats.
"""

from __future__ import annotations

import logging

from grasp.nostr.negentropy_codec import (
    ID_SIZE,
    INFINITE_BOUND,
    PROTOCOL_VERSION,
    Bound,
    BoundWriter,
    MessageReader,
    Mode,
    NegentropyError,
    encode_varint,
)
from grasp.nostr.negentropy_storage import NegentropyStorage

__all__ = [
    "FRAME_SIZE_MINIMUM",
    "PROTOCOL_VERSION",
    "Negentropy",
    "NegentropyError",
    "NegentropyStorage",
    "check_frame_size_limit",
]

logger = logging.getLogger(__name__)

BUCKETS = 16
#: The reference refuses smaller limits: a frame must hold at least one useful range.
FRAME_SIZE_MINIMUM = 4096
#: Headroom the reference keeps below the limit for the closing fingerprint range.
_FRAME_SLACK = 200


def check_frame_size_limit(limit: int) -> None:
    """ValueError unless ``limit`` is 0 (no limit) or at least 4096 bytes, as the reference."""
    if limit < 0 or 0 < limit < FRAME_SIZE_MINIMUM:
        raise ValueError(f"frame_size_limit must be 0 (none) or at least {FRAME_SIZE_MINIMUM}")


class Negentropy:
    """One side of one reconciliation. Not reusable: make a new one per NEG-OPEN."""

    def __init__(self, storage: NegentropyStorage, frame_size_limit: int = 0) -> None:
        if not storage.sealed:
            raise ValueError("negentropy storage must be sealed before reconciling")
        check_frame_size_limit(frame_size_limit)
        self.storage = storage
        self.frame_size_limit = frame_size_limit
        self.is_initiator = False
        #: Initiator only: ids we have that the peer lacks, and ids the peer has that we lack.
        self.have_ids: set[bytes] = set()
        self.need_ids: set[bytes] = set()

    def initiate(self) -> bytes:
        """The first message of the initiator: the whole universe, split by our own items."""
        if self.is_initiator:
            raise ValueError("negentropy reconciliation already initiated")
        self.is_initiator = True
        writer = BoundWriter()
        return bytes([PROTOCOL_VERSION]) + _split_range(
            self.storage, writer, 0, len(self.storage), INFINITE_BOUND
        )

    def reconcile(self, query: bytes) -> bytes | None:
        """Answer one message of the peer.

        Responder: always the reply (a lone version byte ``0x61`` when the query used a version
        we do not speak, so the client can downgrade). Initiator: the next message, or None when
        nothing is left to ask — the id sets are then complete. Raises NegentropyError for a
        malformed query.
        """
        reader = MessageReader(query)
        version = reader.version()
        if version != PROTOCOL_VERSION:
            if self.is_initiator:
                raise NegentropyError(
                    f"peer answered with unsupported protocol version 0x{version:02x}"
                )
            return bytes([PROTOCOL_VERSION])
        output = _Pass(self).run(reader)
        if self.is_initiator and len(output) == 1:
            return None
        return output


class _Pass:
    """The reply to one message: walk its ranges in order while building our own."""

    def __init__(self, owner: Negentropy) -> None:
        self.storage = owner.storage
        self.owner = owner
        self.initiator = owner.is_initiator
        self.limit = owner.frame_size_limit
        self.out = bytearray([PROTOCOL_VERSION])
        self.writer = BoundWriter()
        self.prev_bound: Bound = (0, b"")
        self.skip = False

    def run(self, reader: MessageReader) -> bytes:
        size = len(self.storage)
        prev_index = 0
        while not reader.at_end():
            bound = reader.bound()
            mode = reader.mode()
            lower = prev_index
            upper = self.storage.lower_bound(bound, lower, size)
            piece = b""
            if mode is Mode.SKIP:
                self.skip = True
            elif mode is Mode.FINGERPRINT:
                piece = self._fingerprint_range(reader.fingerprint(), lower, upper, bound)
            elif self.initiator:
                self._learn_differences(reader.id_list(), lower, upper)
                self.skip = True
            else:
                reader.id_list()  # the responder only needs to know the list is well formed
                upper = self._answer_id_list(lower, upper, bound)
            if self._exceeded(len(self.out) + len(piece)):
                # Stop here; the rest of the universe goes back as one fingerprint range.
                self.out += self.writer.range_header(INFINITE_BOUND, Mode.FINGERPRINT)
                self.out += self.storage.fingerprint(upper, size)
                break
            self.out += piece
            prev_index = upper
            self.prev_bound = bound
        return bytes(self.out)

    def _flush_skip(self) -> bytes:
        """Coalesced Skip ranges are only written once something else follows them."""
        if not self.skip:
            return b""
        self.skip = False
        return self.writer.range_header(self.prev_bound, Mode.SKIP)

    def _fingerprint_range(self, theirs: bytes, lower: int, upper: int, bound: Bound) -> bytes:
        if theirs == self.storage.fingerprint(lower, upper):
            self.skip = True
            return b""
        return self._flush_skip() + _split_range(self.storage, self.writer, lower, upper, bound)

    def _learn_differences(self, their_ids: list[bytes], lower: int, upper: int) -> None:
        theirs = set(their_ids)
        ours = set(self.storage.ids(lower, upper))
        self.owner.have_ids |= ours - theirs
        self.owner.need_ids |= theirs - ours

    def _answer_id_list(self, lower: int, upper: int, bound: Bound) -> int:
        """Send our ids of the range; under a frame limit, only as many as fit.

        Returns the index the range really ended at, so the closing fingerprint covers the
        rest exactly (the reference's "shrink upper").
        """
        head = self._flush_skip()
        end_bound = bound
        count = upper - lower
        if self.limit:
            room = self.limit - _FRAME_SLACK - len(self.out)
            # The reference adds ids while out + ids so far <= limit - slack.
            fitting = room // ID_SIZE + 1 if room >= 0 else 0
            if fitting < count:
                count = fitting
                end_bound = self.storage.item(lower + count)
        header = self.writer.range_header(end_bound, Mode.ID_LIST)
        self.out += head + header + encode_varint(count)
        self.out += self.storage.id_blob(lower, lower + count)
        return lower + count

    def _exceeded(self, size: int) -> bool:
        return bool(self.limit) and size > self.limit - _FRAME_SLACK


def _split_range(
    storage: NegentropyStorage, writer: BoundWriter, lower: int, upper: int, upper_bound: Bound
) -> bytes:
    """Describe our items of a range: an IdList when small, else 16 fingerprinted buckets."""
    count = upper - lower
    if count < BUCKETS * 2:
        return (
            writer.range_header(upper_bound, Mode.ID_LIST)
            + encode_varint(count)
            + storage.id_blob(lower, upper)
        )
    per_bucket, with_extra = divmod(count, BUCKETS)
    out = bytearray()
    current = lower
    for index in range(BUCKETS):
        size = per_bucket + (1 if index < with_extra else 0)
        fingerprint = storage.fingerprint(current, current + size)
        current += size
        if current == upper:
            bound = upper_bound
        else:
            bound = _minimal_bound(storage.item(current - 1), storage.item(current))
        out += writer.range_header(bound, Mode.FINGERPRINT) + fingerprint
    return bytes(out)


def _minimal_bound(previous: tuple[int, bytes], current: tuple[int, bytes]) -> Bound:
    """The shortest bound above ``previous`` and not above ``current``."""
    if current[0] != previous[0]:
        return current[0], b""
    shared = 0
    for a, b in zip(previous[1], current[1], strict=False):
        if a != b:
            break
        shared += 1
    return current[0], current[1][: shared + 1]
