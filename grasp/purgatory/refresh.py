"""One truth across nodes (S19.2): bring purgatory's cache up to what the shared tables hold.

Functions of :class:`~grasp.purgatory.store.PurgatoryStore` kept apart (like :mod:`.startup`)
because they touch its indexes directly, under its locks. The store answers with what changed
since the version the cache last applied (:class:`~grasp.store.held.HeldDelta`: the keys and
their current rows), or with everything when the cache is new or too far behind. Rows the
current rules refuse are skipped, not dropped: dropping them is a start-up's job, and two nodes
must not race to delete each other's rows.

A changed entry that the cache already holds is replaced *in place*, so arrival order (PR
order, S3.1) survives a deadline extension; removals are applied before insertions, so an
announcement replaced by its newer version (one transaction, two keys) lands as the new one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from grasp.nostr.event import InvalidEvent
from grasp.purgatory.entries import HeldPr, HeldState
from grasp.purgatory.rows import Clocks, Entry, entry_from_row, event_of, placeholder_from_row
from grasp.store.held import HeldDelta, HeldRow, HeldSnapshot, PlaceholderRow

if TYPE_CHECKING:
    from grasp.purgatory.store import PurgatoryStore

logger = logging.getLogger(__name__)


def refresh(store: PurgatoryStore) -> bool:
    """See :meth:`PurgatoryStore.refresh`; True when the cache changed."""
    if store.db is None:
        return False
    with store._writer:  # a local write waits: its rows are in the answer or after it
        version, answer = store.db.load_held_since(store._held_version)
        if answer is None:
            return False
        rows = answer.rows if isinstance(answer, HeldDelta) else answer
        entries = _entries(rows.events, store._clocks)
        with store._lock:
            if isinstance(answer, HeldDelta):
                _apply_delta(store, answer, entries)
            else:
                store._clear()
                _add_rows(store, rows, entries)
            store._held_version = version
    return True


def _entries(rows: tuple[HeldRow, ...], clocks: Clocks) -> list[Entry]:
    entries = []
    for row in rows:
        try:
            entries.append(entry_from_row(row, clocks))
        except (ValueError, KeyError, TypeError, InvalidEvent):
            logger.debug("skipping held row %s: the rules refuse it", row.event_id)
    return entries


def _apply_delta(store: PurgatoryStore, delta: HeldDelta, entries: list[Entry]) -> None:
    present = {event_of(entry).id for entry in entries}
    for event_id in delta.event_ids:
        if event_id not in present and store._holds(event_id):
            store._remove_entry(event_id)
    for key in delta.placeholder_keys:
        store._placeholders.pop(key, None)
        store._doomed.pop(key, None)
    for event_id in delta.expired_ids:
        store._expired.pop(event_id, None)
    _add_rows(store, delta.rows, entries)


def _add_rows(store: PurgatoryStore, rows: HeldSnapshot, entries: list[Entry]) -> None:
    for entry in entries:
        if not _replace_in_place(store, entry):
            store._insert(entry)
    for placeholder in rows.placeholders:
        _add_placeholder(store, placeholder)
    now = store.now()
    for expired in rows.expired:
        when = store._clocks.to_instant(expired.expired_at)
        if now - when < store.expired_memory_secs:
            store._expired[expired.event_id] = when


def _replace_in_place(store: PurgatoryStore, entry: Entry) -> bool:
    """Swap a held entry for its new version without moving it; False if it is not held."""
    event_id = event_of(entry).id
    if isinstance(entry, HeldState):
        identifier = store._state_ids.get(event_id)
        if identifier is None:
            return False
        store._states[identifier][event_id] = entry
        return True
    if isinstance(entry, HeldPr):
        if event_id not in store._prs:
            return False
        store._prs[event_id] = entry
        return True
    key = store._announcement_ids.get(event_id)
    if key is None:
        return False
    store._announcements[key] = entry
    return True


def _add_placeholder(store: PurgatoryStore, row: PlaceholderRow) -> None:
    target = store._doomed if row.expired else store._placeholders
    target[row.key] = placeholder_from_row(row, store._clocks)
