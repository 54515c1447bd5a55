"""Rebuilding purgatory at start (S9.1): from the event database, and from an old state file.

Functions of :class:`~grasp.purgatory.store.PurgatoryStore` kept apart because they only run at
start-up and touch its indexes directly (under its locks, as its own methods do).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from grasp.nostr.event import InvalidEvent
from grasp.purgatory.entries import HeldPlaceholder, HeldPr, HeldState
from grasp.purgatory.rows import (
    Entry,
    entry_from_row,
    event_of,
    held_row,
    placeholder_from_row,
    placeholder_row,
)
from grasp.store.held import ExpiredRow, HeldChanges

if TYPE_CHECKING:
    from grasp.purgatory.store import PurgatoryStore

logger = logging.getLogger(__name__)


def load(store: PurgatoryStore) -> list[str]:
    """See :meth:`PurgatoryStore.load`."""
    if store.db is None:
        return []
    snapshot = store.db.load_held()
    unusable: list[str] = []
    with store._writer:
        with store._lock:
            for row in snapshot.events:
                try:
                    entry = entry_from_row(row, store._clocks)
                except (ValueError, KeyError, TypeError, InvalidEvent) as exc:
                    logger.warning("dropping held event %s: %s", row.event_id, exc)
                    unusable.append(row.event_id)
                    continue
                if not store._holds(event_of(entry).id):
                    store._insert(entry)
            for placeholder in snapshot.placeholders:
                target = store._doomed if placeholder.expired else store._placeholders
                target[placeholder.key] = placeholder_from_row(placeholder, store._clocks)
            now = store.now()
            for expired in snapshot.expired:
                when = store._clocks.to_instant(expired.expired_at)
                if now - when < store.expired_memory_secs:
                    store._expired[expired.event_id] = when
        store._commit(HeldChanges(unhold=tuple(unusable)))
    logger.info("purgatory loaded from %s: %s", store.db.location, store.counts())
    return store.pending_identifiers()


def refresh(store: PurgatoryStore) -> bool:
    """See :meth:`PurgatoryStore.refresh`: replace the cache by the tables when another node
    changed them. Rows the rules refuse are skipped, not dropped: dropping is the start-up's
    job, and two nodes must not race to delete each other's rows."""
    if store.db is None:
        return False
    with store._writer:  # a local write waits: its row is in the snapshot or after it
        version, snapshot = store.db.load_held_since(store._held_version)
        if snapshot is None:
            return False
        entries = []
        for row in snapshot.events:
            try:
                entries.append(entry_from_row(row, store._clocks))
            except (ValueError, KeyError, TypeError, InvalidEvent):
                continue
        with store._lock:
            store._clear()
            for entry in entries:
                if not store._holds(event_of(entry).id):
                    store._insert(entry)
            for placeholder in snapshot.placeholders:
                target = store._doomed if placeholder.expired else store._placeholders
                target[placeholder.key] = placeholder_from_row(placeholder, store._clocks)
            now = store.now()
            for expired in snapshot.expired:
                when = store._clocks.to_instant(expired.expired_at)
                if now - when < store.expired_memory_secs:
                    store._expired[expired.event_id] = when
            store._held_version = version
    return True


def adopt(
    store: PurgatoryStore, entries: Iterable[Entry | HeldPlaceholder], expired: dict[str, float]
) -> list[str]:
    """See :meth:`PurgatoryStore.adopt`."""
    with store._writer:
        with store._lock:
            new, seen = [], set()
            for entry in entries:
                key = entry.key if isinstance(entry, HeldPlaceholder) else event_of(entry).id
                if key not in seen and not store._known(entry):
                    seen.add(key)
                    new.append(entry)
            held = [e for e in new if not isinstance(e, HeldPlaceholder)]
            placeholders = [e for e in new if isinstance(e, HeldPlaceholder)]
            remembered = {i: t for i, t in expired.items() if i not in store._expired}
        store._commit(
            HeldChanges(
                hold=tuple(held_row(e, store._clocks) for e in held),
                placeholders=tuple(placeholder_row(p, store._clocks) for p in placeholders),
                expire=tuple(
                    ExpiredRow(i, store._clocks.to_wall(t)) for i, t in remembered.items()
                ),
            )
        )
        with store._lock:
            for placeholder in placeholders:
                store._placeholders[placeholder.key] = placeholder
            for entry in held:
                store._insert(entry)
            store._expired.update(remembered)
    return sorted({i for entry in held for i in _identifiers(entry)})


def _identifiers(entry: Entry) -> tuple[str, ...]:
    if isinstance(entry, HeldState):
        return (entry.state.identifier,)
    if isinstance(entry, HeldPr):
        return entry.pr.identifiers
    return ()
