"""NIP-01 event addresses (``"<kind>:<pubkey>:<d>"``) and NIP-09 deletion requests.

Both the event store and the purgatory honour deletions (S10.4), so the parsing of a kind-5
event's targets lives here once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grasp.nostr import kinds
from grasp.nostr.event import Event

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Address:
    """The coordinate of a replaceable (``d == ""``) or addressable event."""

    kind: int
    pubkey: str
    d: str

    @classmethod
    def parse(cls, text: str) -> Address | None:
        """Split on the first two colons only, so a ``d`` containing ``:`` survives (S2.2)."""
        parts = text.split(":", 2)
        if len(parts) != 3:
            return None
        kind_text, pubkey, d = parts
        if not kind_text.isascii() or not kind_text.isdigit() or not _HEX64.fullmatch(pubkey):
            return None
        kind = int(kind_text)
        if kind > kinds.MAX_KIND:
            return None
        return cls(kind, pubkey, d)

    def __str__(self) -> str:
        return f"{self.kind}:{self.pubkey}:{self.d}"


@dataclass(frozen=True)
class DeletionRequest:
    """What a kind-5 event may delete: only targets by its own author (NIP-09)."""

    author: str
    created_at: int
    event_ids: frozenset[str]
    addresses: tuple[Address, ...]

    @classmethod
    def from_event(cls, event: Event) -> DeletionRequest:
        """Targets of a kind-5 event; ``a`` targets of other authors or non-replaceable kinds drop
        out.

        ``e`` targets cannot be checked for authorship here (the target may be unknown);
        whoever applies the request must compare the target's pubkey with :attr:`author`.
        """
        if event.kind != kinds.DELETION:
            raise ValueError(f"event {event.id} is kind {event.kind}, not a deletion")
        ids = frozenset(v for v in event.tag_values("e") if _HEX64.fullmatch(v))
        addresses = []
        for value in event.tag_values("a"):
            address = Address.parse(value)
            if address is None or address.pubkey != event.pubkey:
                continue
            if kinds.is_addressable(address.kind) or kinds.is_replaceable(address.kind):
                addresses.append(address)
        return cls(event.pubkey, event.created_at, ids, tuple(dict.fromkeys(addresses)))

    def deletes(self, event: Event) -> bool:
        """Whether this request removes ``event`` (same author; ``a`` targets up to created_at)."""
        if event.pubkey != self.author or event.kind == kinds.DELETION:
            return False
        if event.id in self.event_ids:
            return True
        if event.address is None:
            return False
        address = Address.parse(event.address)
        return address in self.addresses and event.created_at <= self.created_at
