"""NIP-01 events: strict parsing with one specific reason per defect, id computation, BIP-340.

Every rejection carries the complete NIP-01 ``OK`` message (``"invalid: ..."``) so the relay can
send it verbatim (S10.1). Validation is strict on purpose: the id is a hash over a canonical
serialisation, so anything a different client could serialise differently (floats, booleans,
upper-case hex, lone surrogates) is refused rather than guessed at.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from coincurve import PrivateKey, PublicKeyXOnly

from grasp.nostr import kinds
from grasp.nostr.bech32 import Bech32Error, npub_decode, npub_encode
from grasp.nostr.results import Prefix, Result

__all__ = [
    "Bech32Error",
    "Event",
    "InvalidEvent",
    "compute_event_id",
    "generate_secret_key",
    "npub_decode",
    "npub_encode",
    "public_key",
    "sign_event",
    "supersedes",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_FIELDS = ("id", "pubkey", "created_at", "kind", "tags", "content", "sig")
MAX_CREATED_AT = 2**63 - 1  # SQLite INTEGER range


class InvalidEvent(ValueError):
    """An event that must be refused; :attr:`message` is the full NIP-01 text."""

    def __init__(self, message: str, event_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The ``id`` field as sent when it was a string (for the ``OK`` frame), else None.
        self.event_id = event_id

    @property
    def result(self) -> Result:
        return Result(False, self.message)


def _invalid(text: str, event_id: str | None = None) -> InvalidEvent:
    return InvalidEvent(Prefix.INVALID.wire(text), event_id)


@dataclass(frozen=True, slots=True)
class Event:
    """A signed Nostr event. Construct through :meth:`from_json` for untrusted input."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: tuple[tuple[str, ...], ...]
    content: str
    sig: str

    @classmethod
    def from_json(cls, obj: object) -> Event:
        """Validate a decoded JSON object completely
        (shape, id, signature) or raise InvalidEvent."""
        if not isinstance(obj, dict):
            raise _invalid("event must be a JSON object")
        raw_id = obj.get("id")
        event_id = raw_id if isinstance(raw_id, str) else None
        for name in _FIELDS:
            if name not in obj:
                raise _invalid(f"event has no {name!r} field", event_id)
        event = cls(
            id=_hex_field(obj, "id", _HEX64, 64, event_id),
            pubkey=_hex_field(obj, "pubkey", _HEX64, 64, event_id),
            created_at=_int_field(obj, "created_at", 0, MAX_CREATED_AT, event_id),
            kind=_int_field(obj, "kind", 0, kinds.MAX_KIND, event_id),
            tags=_tags_field(obj["tags"], event_id),
            content=_content_field(obj["content"], event_id),
            sig=_hex_field(obj, "sig", _HEX128, 128, event_id),
        )
        event.verify()
        return event

    @classmethod
    def from_trusted_json(cls, obj: dict[str, Any]) -> Event:
        """Rebuild an event this process validated before
        (e.g. a row of its own store), unchecked."""
        return cls(
            id=obj["id"],
            pubkey=obj["pubkey"],
            created_at=obj["created_at"],
            kind=obj["kind"],
            tags=tuple(tuple(tag) for tag in obj["tags"]),
            content=obj["content"],
            sig=obj["sig"],
        )

    def verify(self) -> None:
        """Recompute the id (S10.1) and check the BIP-340 signature; raise InvalidEvent if wrong."""
        try:
            expected = compute_event_id(
                self.pubkey, self.created_at, self.kind, self.tags, self.content
            )
        except UnicodeEncodeError:
            raise _invalid("event text is not valid UTF-8 (lone surrogate)", self.id) from None
        if expected != self.id:
            raise _invalid("bad event id", self.id)
        try:
            key = _xonly_key(self.pubkey)
        except ValueError:
            raise _invalid("pubkey is not a valid secp256k1 public key", self.id) from None
        try:
            good = key.verify(bytes.fromhex(self.sig), bytes.fromhex(self.id))
        except ValueError:
            good = False
        if not good:
            raise _invalid("bad signature", self.id)

    def to_json(self) -> dict[str, Any]:
        """The NIP-01 JSON object (tags as lists), ready for ``json.dumps``."""
        return {
            "id": self.id,
            "pubkey": self.pubkey,
            "created_at": self.created_at,
            "kind": self.kind,
            "tags": [list(tag) for tag in self.tags],
            "content": self.content,
            "sig": self.sig,
        }

    def to_json_text(self) -> str:
        """Compact JSON text of :meth:`to_json` (non-ASCII kept verbatim, like the id preimage)."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)

    def first_tag(self, name: str) -> str | None:
        """Value of the first tag called ``name``; ``""``
        if that tag has no value; None if absent."""
        for tag in self.tags:
            if tag and tag[0] == name:
                return tag[1] if len(tag) > 1 else ""
        return None

    def tag_values(self, name: str) -> list[str]:
        """``tag[1]`` of every tag called ``name`` that has a value, in event order."""
        return [tag[1] for tag in self.tags if len(tag) > 1 and tag[0] == name]

    def tags_named(self, name: str) -> list[tuple[str, ...]]:
        """Every complete tag called ``name``, in event order (for multi-valued tags like clone)."""
        return [tag for tag in self.tags if tag and tag[0] == name]

    @property
    def d(self) -> str | None:
        """The first ``d`` tag value (the identifier of addressable events)."""
        return self.first_tag("d")

    @property
    def storage_class(self) -> kinds.StorageClass:
        return kinds.storage_class(self.kind)

    @property
    def address(self) -> str | None:
        """``"<kind>:<pubkey>:<d>"`` for addressable/replaceable events (NIP-01 ``a`` tag form)."""
        cls = self.storage_class
        if cls is kinds.StorageClass.ADDRESSABLE:
            return f"{self.kind}:{self.pubkey}:{self.d or ''}"
        if cls is kinds.StorageClass.REPLACEABLE:
            return f"{self.kind}:{self.pubkey}:"
        return None


def compute_event_id(
    pubkey: str, created_at: int, kind: int, tags: Iterable[Sequence[str]], content: str
) -> str:
    """sha256 of the canonical NIP-01
    serialisation (S10.1); UnicodeEncodeError on lone surrogates."""
    preimage = json.dumps(
        [0, pubkey, created_at, kind, [list(tag) for tag in tags], content],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(preimage.encode("utf-8")).hexdigest()


def supersedes(candidate: Event, held: Event) -> bool:
    """NIP-01 replacement order: a later ``created_at`` wins;
    in the same second the lower id wins."""
    if candidate.created_at != held.created_at:
        return candidate.created_at > held.created_at
    return candidate.id < held.id


def generate_secret_key() -> str:
    """A fresh random secp256k1 secret key as 64 hex characters."""
    return PrivateKey().secret.hex()


def public_key(secret_hex: str) -> str:
    """The BIP-340 x-only public key (64 hex) of a secret key."""
    return PrivateKey(bytes.fromhex(secret_hex)).public_key_xonly.format().hex()


def sign_event(
    secret_key_hex: str,
    kind: int,
    tags: Iterable[Sequence[str]],
    content: str,
    created_at: int | None = None,
) -> Event:
    """Build and sign an event (tests and tools); the result passes :meth:`Event.from_json`."""
    secret = PrivateKey(bytes.fromhex(secret_key_hex))
    pubkey = secret.public_key_xonly.format().hex()
    tag_tuple = tuple(tuple(tag) for tag in tags)
    when = int(time.time()) if created_at is None else created_at
    event_id = compute_event_id(pubkey, when, kind, tag_tuple, content)
    sig = secret.sign_schnorr(bytes.fromhex(event_id), os.urandom(32)).hex()
    return Event(event_id, pubkey, when, kind, tag_tuple, content, sig)


@functools.lru_cache(maxsize=4096)
def _xonly_key(pubkey_hex: str) -> PublicKeyXOnly:
    """Parsed public keys are cached: a relay sees the same few authors over and over."""
    return PublicKeyXOnly(bytes.fromhex(pubkey_hex))


def _hex_field(
    obj: dict, name: str, pattern: re.Pattern[str], length: int, event_id: str | None
) -> str:
    value = obj[name]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _invalid(f"{name} must be {length} lowercase hex characters", event_id)
    return value


def _int_field(obj: dict, name: str, low: int, high: int, event_id: str | None) -> int:
    value = obj[name]
    # bool is a subclass of int; JSON true is not a number.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(f"{name} must be an integer", event_id)
    if not low <= value <= high:
        raise _invalid(f"{name} must be between {low} and {high}", event_id)
    return value


def _tags_field(value: object, event_id: str | None) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list):
        raise _invalid("tags must be a list of lists of strings", event_id)
    out = []
    for tag in value:
        if not isinstance(tag, list) or not all(isinstance(item, str) for item in tag):
            raise _invalid("tags must be a list of lists of strings", event_id)
        out.append(tuple(tag))
    return tuple(out)


def _content_field(value: object, event_id: str | None) -> str:
    if not isinstance(value, str):
        raise _invalid("content must be a string", event_id)
    return value
