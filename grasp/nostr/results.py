"""NIP-01 machine-readable result prefixes and the accept/reject outcome of one EVENT.

One enum for every prefix (the nostr-rs-relay habit) so a typo in a prefix is an AttributeError
at import time rather than a silently non-standard ``OK`` message on the wire (S10.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Prefix(str, Enum):
    """The standard prefixes of NIP-01 ``OK``/``CLOSED`` messages, plus GRASP's ``purgatory``."""

    DUPLICATE = "duplicate"
    INVALID = "invalid"
    BLOCKED = "blocked"
    RATE_LIMITED = "rate-limited"
    ERROR = "error"
    PURGATORY = "purgatory"
    RESTRICTED = "restricted"
    POW = "pow"

    def wire(self, text: str) -> str:
        """``"<prefix>: <text>"`` — the wire form NIP-01 asks for."""
        return f"{self.value}: {text}" if text else f"{self.value}:"


@dataclass(frozen=True)
class Result:
    """What the relay answers to one EVENT: ``["OK", id, accepted, message]``.

    Prefixes appear with ``accepted=True`` too (``duplicate:``, ``purgatory:``), which is why the
    prefix is optional for :meth:`ok` and mandatory for :meth:`reject`.
    """

    accepted: bool
    message: str

    @classmethod
    def ok(cls, prefix: Prefix | None = None, text: str = "") -> Result:
        """An accepted event; with no prefix the message is ``text`` verbatim (usually ``""``)."""
        return cls(True, prefix.wire(text) if prefix is not None else text)

    @classmethod
    def reject(cls, prefix: Prefix, text: str) -> Result:
        """A refused event; NIP-01 requires a prefix whenever ``accepted`` is false."""
        return cls(False, prefix.wire(text))

    @property
    def prefix(self) -> Prefix | None:
        """The machine-readable prefix of :attr:`message`, if it carries a known one."""
        head, sep, _ = self.message.partition(":")
        if not sep:
            return None
        try:
            return Prefix(head)
        except ValueError:
            return None

    def to_wire(self, event_id: str) -> list[object]:
        """The complete ``OK`` frame; always four elements (S10.1)."""
        return ["OK", event_id, self.accepted, self.message]
