"""NIP-77 negentropy syncing: the message layer, independent of any transport (S17.3).

Frames are the decoded JSON arrays a websocket session already has in hand:

* client → relay: ``["NEG-OPEN", sub, filter, hex]``, ``["NEG-MSG", sub, hex]``,
  ``["NEG-CLOSE", sub]``;
* relay → client: ``["NEG-MSG", sub, hex]``, ``["NEG-ERR", sub, "<prefix>: reason"]``.

:class:`NegentropyResponder` is the relay side of one connection: it keeps that connection's
sessions (NEG subscription ids are their own namespace, apart from REQ ids), asks the relay's
``items_for(filter)`` for the records to reconcile, and turns every client frame into the one
frame to send back. :class:`NegentropyInitiator` is the client side of one reconciliation, for
syncing history from a peer relay.

NEG-ERR prefixes: ``invalid:`` for malformed frames and negentropy messages, ``blocked:`` for
too many records or sessions, ``closed:`` for a sub id with no open session, ``error:`` for the
relay's own fault (a failed store query; client input never produces it, S14.2).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from grasp.nostr.filters import Filter, InvalidFilter
from grasp.nostr.negentropy import (
    Negentropy,
    NegentropyError,
    NegentropyStorage,
    check_frame_size_limit,
)
from grasp.nostr.results import Prefix

__all__ = [
    "ItemsFor",
    "NegClose",
    "NegErr",
    "NegMsg",
    "NegOpen",
    "NegentropyInitiator",
    "NegentropyRefused",
    "NegentropyResponder",
    "Nip77Error",
    "ReconcileResult",
    "parse_frame",
]

logger = logging.getLogger(__name__)

NEG_OPEN = "NEG-OPEN"
NEG_MSG = "NEG-MSG"
NEG_CLOSE = "NEG-CLOSE"
NEG_ERR = "NEG-ERR"
VERBS = frozenset({NEG_OPEN, NEG_MSG, NEG_CLOSE, NEG_ERR})
#: NIP-77's own prefix for a session the relay no longer has (not one of NIP-01's).
CLOSED = "closed"
MAX_SUB_ID_LENGTH = 64
DEFAULT_MAX_SESSIONS = 8
DEFAULT_MAX_RECORDS = 100_000
#: Binary bytes per reply (120 KB of hex): what rust-nostr's relay uses, as its replies show.
DEFAULT_FRAME_SIZE_LIMIT = 60_000
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")

#: ``items_for(filter)`` → the relay's ``(created_at, event id hex)`` records matching it.
ItemsFor = Callable[[Filter], Iterable[tuple[int, str]]]


class Nip77Error(ValueError):
    """A frame that cannot be served. :attr:`message` is the full ``"<prefix>: text"``.

    :attr:`sub_id` is None when the frame had no usable subscription id: then only a ``NOTICE``
    can answer it (:meth:`to_frame` picks the right one).
    """

    def __init__(self, message: str, sub_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.sub_id = sub_id

    def to_frame(self) -> list[Any]:
        if self.sub_id is None:
            return ["NOTICE", self.message]
        return NegErr(self.sub_id, self.message).to_json()


class NegentropyRefused(Exception):
    """The peer answered ``NEG-ERR``; :attr:`reason` is its text (``"blocked: ..."``)."""

    def __init__(self, sub_id: str, reason: str) -> None:
        super().__init__(f"{sub_id}: {reason}")
        self.sub_id = sub_id
        self.reason = reason


@dataclass(frozen=True)
class NegOpen:
    sub_id: str
    filter: Filter
    message: bytes

    def to_json(self) -> list[Any]:
        return [NEG_OPEN, self.sub_id, self.filter.to_json(), self.message.hex()]


@dataclass(frozen=True)
class NegMsg:
    sub_id: str
    message: bytes

    def to_json(self) -> list[Any]:
        return [NEG_MSG, self.sub_id, self.message.hex()]


@dataclass(frozen=True)
class NegClose:
    sub_id: str

    def to_json(self) -> list[Any]:
        return [NEG_CLOSE, self.sub_id]


@dataclass(frozen=True)
class NegErr:
    sub_id: str
    reason: str

    def to_json(self) -> list[Any]:
        return [NEG_ERR, self.sub_id, self.reason]


NegFrame = NegOpen | NegMsg | NegClose | NegErr


def _invalid(text: str, sub_id: str | None = None) -> Nip77Error:
    return Nip77Error(Prefix.INVALID.wire(text), sub_id)


def parse_frame(frame: object) -> NegFrame:
    """Parse one decoded NIP-77 frame strictly; Nip77Error names what is wrong."""
    if (
        not isinstance(frame, list)
        or not frame
        or not isinstance(frame[0], str)
        or frame[0] not in VERBS
    ):
        raise _invalid("not a NIP-77 frame (NEG-OPEN, NEG-MSG, NEG-CLOSE or NEG-ERR)")
    verb = frame[0]
    sub_id = _sub_id(frame, verb)
    expected = {NEG_OPEN: 4, NEG_MSG: 3, NEG_CLOSE: 2, NEG_ERR: 3}[verb]
    # NIP-77 allows NEG-ERR a 4th element (the relay's record limit); we ignore it.
    if len(frame) != expected and not (verb == NEG_ERR and len(frame) == 4):
        raise _invalid(f"{verb} takes {expected} elements, got {len(frame)}", sub_id)
    if verb == NEG_OPEN:
        try:
            flt = Filter.from_json(frame[2])
        except InvalidFilter as exc:
            raise Nip77Error(exc.message, sub_id) from None
        return NegOpen(sub_id, flt, _message(frame[3], sub_id))
    if verb == NEG_MSG:
        return NegMsg(sub_id, _message(frame[2], sub_id))
    if verb == NEG_CLOSE:
        return NegClose(sub_id)
    if not isinstance(frame[2], str):
        raise _invalid("NEG-ERR reason must be a string", sub_id)
    return NegErr(sub_id, frame[2])


def _sub_id(frame: list[Any], verb: str) -> str:
    sub_id = frame[1] if len(frame) > 1 else None
    if not isinstance(sub_id, str):
        raise _invalid(f"{verb} needs a subscription id string")
    if not 1 <= len(sub_id) <= MAX_SUB_ID_LENGTH:
        raise _invalid(f"subscription id must be 1 to {MAX_SUB_ID_LENGTH} characters", sub_id)
    return sub_id


def _message(value: object, sub_id: str) -> bytes:
    if not isinstance(value, str):
        raise _invalid("negentropy message must be a hex string", sub_id)
    if not _HEX.fullmatch(value):
        raise _invalid("negentropy message must be non-empty hex of even length", sub_id)
    return bytes.fromhex(value)


class NegentropyResponder:
    """The relay side of NIP-77 for one connection: at most ``max_sessions`` open at once.

    ``frame_size_limit`` bounds every reply (binary bytes, 0 = none, else ≥ 4096); replies are
    hex on the wire, so a limit of L keeps a NEG-MSG under about 2 L + 100 characters.
    """

    def __init__(
        self,
        items_for: ItemsFor,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_records: int = DEFAULT_MAX_RECORDS,
        frame_size_limit: int = DEFAULT_FRAME_SIZE_LIMIT,
    ) -> None:
        check_frame_size_limit(frame_size_limit)
        self._items_for = items_for
        self.max_sessions = max_sessions
        self.max_records = max_records
        self.frame_size_limit = frame_size_limit
        self._sessions: dict[str, Negentropy] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def session_ids(self) -> frozenset[str]:
        return frozenset(self._sessions)

    def handle(self, frame: object) -> list[Any] | None:
        """The frame to send back for one client frame (None for NEG-CLOSE, which has none)."""
        try:
            parsed = parse_frame(frame)
        except Nip77Error as exc:
            if exc.sub_id is not None:
                self._sessions.pop(exc.sub_id, None)  # NIP-77: after NEG-ERR it is closed
            return exc.to_frame()
        if isinstance(parsed, NegOpen):
            return self.open(parsed)
        if isinstance(parsed, NegMsg):
            return self.message(parsed)
        if isinstance(parsed, NegClose):
            self.close(parsed.sub_id)
            return None
        return _invalid("NEG-ERR is sent by relays, not to them", parsed.sub_id).to_frame()

    def open(self, request: NegOpen) -> list[Any]:
        """NEG-OPEN: replace a session of the same id, load the records, answer the message."""
        sub_id = request.sub_id
        self._sessions.pop(sub_id, None)
        if len(self._sessions) >= self.max_sessions:
            return self._error(
                sub_id,
                Prefix.BLOCKED,
                f"too many open negentropy sessions (at most {self.max_sessions} per connection)",
            )
        storage_or_error = self._load(sub_id, request.filter)
        if isinstance(storage_or_error, list):
            return storage_or_error
        session = Negentropy(storage_or_error, self.frame_size_limit)
        self._sessions[sub_id] = session
        return self._answer(sub_id, session, request.message)

    def message(self, request: NegMsg) -> list[Any]:
        """NEG-MSG: the next round of an open session."""
        session = self._sessions.get(request.sub_id)
        if session is None:
            return NegErr(
                request.sub_id, f"{CLOSED}: no open negentropy session with this id"
            ).to_json()
        return self._answer(request.sub_id, session, request.message)

    def close(self, sub_id: str) -> None:
        """NEG-CLOSE: forget the session; closing an unknown id is no error."""
        self._sessions.pop(sub_id, None)

    def close_all(self) -> None:
        """The connection ended."""
        self._sessions.clear()

    def _load(self, sub_id: str, flt: Filter) -> NegentropyStorage | list[Any]:
        try:
            records = list(itertools.islice(self._items_for(flt), self.max_records + 1))
        except Exception:
            logger.exception("NEG-OPEN %s: store query failed", sub_id)
            return self._error(sub_id, Prefix.ERROR, "could not query stored events")
        if len(records) > self.max_records:
            return self._error(
                sub_id,
                Prefix.BLOCKED,
                f"too many events (more than {self.max_records} match this filter)",
            )
        unique = {item_id: created_at for created_at, item_id in records}  # one item per id
        try:
            return NegentropyStorage.from_hex_items((t, i) for i, t in unique.items())
        except ValueError:
            logger.exception("NEG-OPEN %s: stored records are not (created_at, id hex)", sub_id)
            return self._error(sub_id, Prefix.ERROR, "could not read stored events")

    def _answer(self, sub_id: str, session: Negentropy, message: bytes) -> list[Any]:
        try:
            reply = session.reconcile(message)
        except NegentropyError as exc:
            return self._error(sub_id, Prefix.INVALID, exc.reason)
        assert reply is not None  # a responder always answers
        return NegMsg(sub_id, reply).to_json()

    def _error(self, sub_id: str, prefix: Prefix, text: str) -> list[Any]:
        self._sessions.pop(sub_id, None)
        logger.debug("NEG-ERR %s: %s: %s", sub_id, prefix.value, text)
        return NegErr(sub_id, prefix.wire(text)).to_json()


@dataclass(frozen=True)
class ReconcileResult:
    """The end of a reconciliation, seen from the initiator (ids as lowercase hex)."""

    #: Ids we have and the peer lacks (to upload with EVENT).
    have_ids: frozenset[str]
    #: Ids the peer has and we lack (to download with REQ).
    need_ids: frozenset[str]


class NegentropyInitiator:
    """The client side of one NIP-77 reconciliation with a peer relay.

    ``open_frame()`` → send; then feed every reply to :meth:`on_frame`, which returns the next
    frame to send or, when done, a :class:`ReconcileResult` (send :meth:`close_frame` then).
    A ``NEG-ERR`` reply raises :class:`NegentropyRefused` (fall back to REQ paging, S17.3).
    """

    def __init__(
        self,
        items: Iterable[tuple[int, str]],
        sub_id: str,
        flt: Filter,
        *,
        frame_size_limit: int = 0,
    ) -> None:
        if not 1 <= len(sub_id) <= MAX_SUB_ID_LENGTH:
            raise ValueError(f"subscription id must be 1 to {MAX_SUB_ID_LENGTH} characters")
        self.sub_id = sub_id
        self.filter = flt
        self._negentropy = Negentropy(NegentropyStorage.from_hex_items(items), frame_size_limit)
        self.rounds = 0
        self.result: ReconcileResult | None = None

    def open_frame(self) -> list[Any]:
        return NegOpen(self.sub_id, self.filter, self._negentropy.initiate()).to_json()

    def close_frame(self) -> list[Any]:
        return NegClose(self.sub_id).to_json()

    def on_frame(self, frame: object) -> list[Any] | ReconcileResult:
        """Handle the peer's NEG-MSG/NEG-ERR for our sub id; Nip77Error if it is malformed."""
        if self.result is not None:
            raise ValueError("reconciliation already finished")
        parsed = parse_frame(frame)
        if parsed.sub_id != self.sub_id:
            raise _invalid(f"frame for another subscription {parsed.sub_id!r}", parsed.sub_id)
        if isinstance(parsed, NegErr):
            raise NegentropyRefused(parsed.sub_id, parsed.reason)
        if not isinstance(parsed, NegMsg):
            raise _invalid(f"a relay does not send {parsed.to_json()[0]}", parsed.sub_id)
        self.rounds += 1
        try:
            reply = self._negentropy.reconcile(parsed.message)
        except NegentropyError as exc:
            raise _invalid(exc.reason, parsed.sub_id) from None
        if reply is not None:
            return NegMsg(self.sub_id, reply).to_json()
        self.result = ReconcileResult(
            frozenset(i.hex() for i in self._negentropy.have_ids),
            frozenset(i.hex() for i in self._negentropy.need_ids),
        )
        return self.result
