"""NIP-01 subscription filters: strict parsing and in-memory matching.

The same :class:`Filter` drives the SQLite query (``grasp.store``) and live fan-out
(:meth:`Filter.matches`), so both must agree; the store tests check them against each other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from grasp.nostr import kinds
from grasp.nostr.event import Event
from grasp.nostr.results import Prefix

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TAG_KEY = re.compile(r"#([a-zA-Z])")
#: Tag filters whose values NIP-01 says MUST be exact 64-char lowercase hex.
_HEX_TAGS = frozenset({"e", "p"})
#: Upper bound on values per filter key: keeps one REQ from building an unbounded SQL statement.
MAX_VALUES = 1000
MAX_TIMESTAMP = 2**63 - 1


class InvalidFilter(ValueError):
    """A filter that must be refused; :attr:`message` is the full ``"invalid: ..."`` text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _invalid(text: str) -> InvalidFilter:
    return InvalidFilter(Prefix.INVALID.wire(text))


_EMPTY_TAGS: Mapping[str, frozenset[str]] = MappingProxyType({})


@dataclass(frozen=True)
class Filter:
    """One NIP-01 filter. ``None`` means "no constraint"; an empty set matches nothing."""

    ids: frozenset[str] | None = None
    authors: frozenset[str] | None = None
    kinds: frozenset[int] | None = None
    tags: Mapping[str, frozenset[str]] = field(default_factory=lambda: _EMPTY_TAGS, hash=False)
    since: int | None = None
    until: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        """Accept any iterables when built
        in code (``Filter(kinds={30617}, tags={"d": ["x"]})``)."""
        for name in ("ids", "authors", "kinds"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))
        if not isinstance(self.tags, MappingProxyType) or any(
            not isinstance(v, frozenset) for v in self.tags.values()
        ):
            frozen = {letter: frozenset(vals) for letter, vals in self.tags.items()}
            object.__setattr__(self, "tags", MappingProxyType(frozen))

    @classmethod
    def from_json(cls, obj: object) -> Filter:
        """Parse one filter object of a REQ; raise :class:`InvalidFilter` naming the bad key."""
        if not isinstance(obj, dict):
            raise _invalid("filter must be a JSON object")
        tags: dict[str, frozenset[str]] = {}
        values: dict[str, object] = {}
        for key, value in obj.items():
            match = _TAG_KEY.fullmatch(key) if isinstance(key, str) else None
            if match:
                letter = match.group(1)
                tags[letter] = _string_set(key, value, hex_only=letter in _HEX_TAGS)
            elif key in ("ids", "authors"):
                values[key] = _string_set(key, value, hex_only=True)
            elif key == "kinds":
                values[key] = _kind_set(value)
            elif key in ("since", "until", "limit"):
                values[key] = _non_negative_int(key, value)
            else:
                raise _invalid(f"unsupported filter key {key!r}")
        return cls(tags=MappingProxyType(tags), **values)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        """The filter as a JSON object (sorted values, so equal filters serialise equally)."""
        out: dict[str, object] = {}
        if self.ids is not None:
            out["ids"] = sorted(self.ids)
        if self.authors is not None:
            out["authors"] = sorted(self.authors)
        if self.kinds is not None:
            out["kinds"] = sorted(self.kinds)
        for letter in sorted(self.tags):
            out[f"#{letter}"] = sorted(self.tags[letter])
        for name in ("since", "until", "limit"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @property
    def matches_nothing(self) -> bool:
        """True when an empty list (``"ids": []``) makes the filter unsatisfiable."""
        sets = [self.ids, self.authors, self.kinds, *self.tags.values()]
        if any(s is not None and not s for s in sets):
            return True
        return self.since is not None and self.until is not None and self.since > self.until

    def matches(self, event: Event) -> bool:
        """NIP-01: every present key must match (AND); within a key one value suffices (OR).

        ``limit`` is ignored here: it bounds the stored query only, never live events.
        """
        if self.ids is not None and event.id not in self.ids:
            return False
        if self.authors is not None and event.pubkey not in self.authors:
            return False
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.since is not None and event.created_at < self.since:
            return False
        if self.until is not None and event.created_at > self.until:
            return False
        for letter, wanted in self.tags.items():
            if not any(len(t) > 1 and t[0] == letter and t[1] in wanted for t in event.tags):
                return False
        return True


def _string_set(key: str, value: object, hex_only: bool) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{key!r} must be a list of strings")
    if len(value) > MAX_VALUES:
        raise _invalid(f"{key!r} has more than {MAX_VALUES} values")
    if hex_only:
        for item in value:
            if not _HEX64.fullmatch(item):
                raise _invalid(f"{key!r} values must be 64 lowercase hex characters")
    for item in value:
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:  # no stored event can contain one, and SQLite cannot bind it
            raise _invalid(f"{key!r} values must be valid UTF-8 (lone surrogate)") from None
    return frozenset(value)


def _kind_set(value: object) -> frozenset[int]:
    if not isinstance(value, list):
        raise _invalid("'kinds' must be a list of integers")
    if len(value) > MAX_VALUES:
        raise _invalid(f"'kinds' has more than {MAX_VALUES} values")
    for item in value:
        if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item <= kinds.MAX_KIND:
            raise _invalid(f"'kinds' values must be integers between 0 and {kinds.MAX_KIND}")
    return frozenset(value)


def _non_negative_int(key: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_TIMESTAMP:
        raise _invalid(f"{key!r} must be a non-negative integer")
    return value
