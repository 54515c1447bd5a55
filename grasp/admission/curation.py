"""Curation: the operator's repository allow/deny lists and pubkey deny-list (S15.5).

GRASP-01 lets a relay refuse announcements "on other criteria such as ... whitelist" (L11) and
refuse events for "curation eg. WoT, whitelist, user bans" (L18); it also wants the policy
stated in NIP-11 ``curation`` exactly when events are curated beyond generic spam prevention
(L30). :class:`Curation` is that policy as pure data: the write policy asks it about every event
and every announcement, NIP-11 asks it for its one-line summary.

A repository rule is written the way people name repositories here (S17.5 uses the same
shapes): ``npub1…`` (every repository of that key), ``npub1…/identifier`` (one repository) or
``identifier`` (that identifier whoever announces it). A deny rule beats an allow rule; an
allow-list that is not empty admits only what it matches.

The per-connection event rate limit is *not* curation: it is generic spam prevention, so it is
enforced by the websocket session (``grasp.relay.transport.session``) and never listed here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from grasp.nostr.bech32 import Bech32Error, npub_decode, npub_encode
from grasp.nostr.nip34 import identifier_problem
from grasp.nostr.results import Prefix, Result

logger = logging.getLogger(__name__)

__all__ = ["Curation", "RepoRule", "parse_pubkey"]

_HEX = frozenset("0123456789abcdef")


def parse_pubkey(text: str) -> str:
    """An ``npub1…`` or 64-character hex key as lowercase hex; ValueError otherwise."""
    value = text.strip()
    if value.startswith("npub1"):
        try:
            return npub_decode(value)
        except Bech32Error as exc:
            raise ValueError(f"{text!r} is not a valid npub ({exc})") from None
    if len(value) == 64 and set(value.lower()) <= _HEX:
        return value.lower()
    raise ValueError(f"{text!r} is neither an npub nor a 64-character hex public key")


@dataclass(frozen=True)
class RepoRule:
    """One ``--repo-allow``/``--repo-deny`` value: an owner, an identifier, or both."""

    owner: str | None
    identifier: str | None

    @classmethod
    def parse(cls, text: str) -> RepoRule:
        """``npub``, ``npub/identifier`` or ``identifier``; ValueError with the reason."""
        value = text.strip()
        if not value:
            raise ValueError("a repository rule must not be empty")
        head, slash, tail = value.partition("/")
        if slash:
            problem = identifier_problem(tail)
            if problem:
                raise ValueError(f"{text!r}: {problem}")
            return cls(parse_pubkey(head), tail)
        if head.startswith("npub1"):
            return cls(parse_pubkey(head), None)
        problem = identifier_problem(head)
        if problem:
            raise ValueError(f"{text!r}: {problem}")
        return cls(None, head)

    def matches(self, owner: str, identifier: str) -> bool:
        return (self.owner is None or self.owner == owner) and (
            self.identifier is None or self.identifier == identifier
        )

    def __str__(self) -> str:
        if self.owner is None:
            return str(self.identifier)
        npub = npub_encode(self.owner)
        return npub if self.identifier is None else f"{npub}/{self.identifier}"


@dataclass(frozen=True)
class Curation:
    """The operator's curation rules; empty means none (and no NIP-11 ``curation``)."""

    allow: tuple[RepoRule, ...] = ()
    deny: tuple[RepoRule, ...] = ()
    denied_pubkeys: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_texts(
        cls, allow: Iterable[str] = (), deny: Iterable[str] = (), pubkeys: Iterable[str] = ()
    ) -> Curation:
        return cls(
            tuple(RepoRule.parse(t) for t in allow),
            tuple(RepoRule.parse(t) for t in deny),
            frozenset(parse_pubkey(p) for p in pubkeys),
        )

    @property
    def active(self) -> bool:
        """Whether any rule curates events (S15.2: NIP-11 ``curation`` exactly then)."""
        return bool(self.allow or self.deny or self.denied_pubkeys)

    def check_author(self, pubkey: str) -> Result | None:
        """L18: events of a denied key are refused, whatever their kind."""
        if pubkey in self.denied_pubkeys:
            return Result.reject(
                Prefix.BLOCKED,
                f"events by {npub_encode(pubkey)} are not accepted here (--deny-pubkey)",
            )
        return None

    def check_repository(self, owner: str, identifier: str) -> Result | None:
        """L11: an announcement of a denied (or not allowed) repository is refused, naming
        the rule that decided."""
        name = f"{npub_encode(owner)}/{identifier}"
        for rule in self.deny:
            if rule.matches(owner, identifier):
                return Result.reject(
                    Prefix.BLOCKED, f"repository {name} is refused here (--repo-deny {rule})"
                )
        if self.allow and not any(rule.matches(owner, identifier) for rule in self.allow):
            return Result.reject(
                Prefix.BLOCKED,
                f"repository {name} is not on this relay's allow-list (--repo-allow)",
            )
        return None

    def summary(self) -> str | None:
        """The NIP-11 ``curation`` text (L30): what is curated, never the listed keys."""
        if not self.active:
            return None
        parts = []
        if self.allow:
            rules = ", ".join(str(rule) for rule in self.allow)
            parts.append(f"only these repositories are accepted: {rules}")
        if self.deny:
            parts.append(f"{len(self.deny)} repository rule(s) refuse announcements")
        if self.denied_pubkeys:
            parts.append(f"events of {len(self.denied_pubkeys)} banned public key(s) are refused")
        return "Curated: " + "; ".join(parts) + "."
