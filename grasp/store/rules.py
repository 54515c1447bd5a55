"""The engine-independent parts of NIP-01 storage (S11.2), shared by every engine.

Both engines run the same decision code, so the contract suite checks SQL and transactions, not
two copies of the rules.
"""

from __future__ import annotations

from collections.abc import Iterable

from grasp.nostr import kinds
from grasp.nostr.event import Event
from grasp.nostr.filters import Filter


def replacement_d(event: Event) -> str | None:
    """The ``d`` column: the replacement key part, or None for kinds that are never replaced.

    ``''`` for replaceable kinds and the first d value (or ``''``) for addressable ones, so
    (kind, pubkey, d) is the replacement key of both classes.
    """
    cls = event.storage_class
    if cls is kinds.StorageClass.ADDRESSABLE:
        return event.d or ""
    if cls is kinds.StorageClass.REPLACEABLE:
        return ""
    return None


def held_version_wins(held_created_at: int, held_id: str, event: Event) -> bool:
    """True when the held version beats ``event`` (newer, or same second and lower id)."""
    if held_created_at != event.created_at:
        return held_created_at > event.created_at
    return held_id < event.id


def index_rows(event: Event) -> list[tuple[str, str]]:
    """(name, first value) of every single-letter tag: NIP-01 indexes only ``tag[1]``."""
    return sorted({(tag[0], tag[1]) for tag in event.tags if len(tag) > 1 and len(tag[0]) == 1})


def effective_limit(flt: Filter, limit_cap: int) -> int:
    """The filter's ``limit`` clamped to the cap; a missing limit means the cap (S10.1)."""
    return min(flt.limit if flt.limit is not None else limit_cap, limit_cap)


#: The columns a NIP-77 reconciliation reads (S17.3): no JSON text.
RECORD_COLUMNS = "e.created_at, e.id"


def record_limit(flt: Filter, limit: int) -> int:
    """How many ``(created_at, id)`` records a NIP-77 query reads: the filter's ``limit``
    when it has a smaller one, else ``limit``; 0 when the filter can match nothing."""
    if flt.matches_nothing:
        return 0
    return min(flt.limit, limit) if flt.limit is not None else limit


def runnable(flt: Filter, limit_cap: int) -> bool:
    """False when the filter can return nothing (limit 0, an empty id list, since > until)."""
    return effective_limit(flt, limit_cap) > 0 and not flt.matches_nothing


def newest_first(rows: Iterable[tuple[str, int, str]]) -> list[str]:
    """Merge (id, created_at, text) rows of several filters: one per id, NIP-01 order."""
    found: dict[str, tuple[int, str]] = {}
    for event_id, created_at, text in rows:
        found.setdefault(event_id, (created_at, text))
    ordered = sorted(found.items(), key=lambda item: (-item[1][0], item[0]))
    return [text for _, (_, text) in ordered]
