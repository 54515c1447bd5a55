"""The purgatory store (S1-S3, S9.1): a cache of purgatory's tables, with an injected clock.

Three holdings, as upstream keeps them (protocol.md §4.6), plus placeholders:

* state events (30618) keyed by identifier, several per identifier (different authors, S1.3);
* PR / PR-update events (1618/1619) keyed by event id;
* new announcements (30617) keyed by (owner, d), held until their repository has data;
* *placeholders* for pushes to ``refs/nostr/<id>`` that came before their PR event, one per
  event id and repository (S1.3, S14.3).

Write-through (S9.1): with a database (``db``, the event store), every change is committed to
its tables *before* the method returns — so before the caller answers ``OK true`` — and only
then applied in memory; a failed write raises and changes nothing. :meth:`save_and_unhold`
stores an event and drops held rows in one transaction (a release, a deletion). At start,
:meth:`load` rebuilds everything from the tables. Without a database the store is memory only
(unit tests of the rules).

Every entry expires ``expiry_secs`` after it was added (S1.4, 30 min); :meth:`sweep` removes
them and remembers their ids for ``expired_memory_secs`` (7 days) so a *synced* copy is refused.
An expired placeholder is kept, marked, until the Releaser deleted its ref and pruned its
objects (:meth:`expired_placeholders`, :meth:`forget_placeholders`). Removal for any other
reason (release, authorisation failure, deletion) is not expiry.

Locks: reads and in-memory changes take one unpatched OS lock and never yield. Writers are
greenlets and take a gevent lock too, held across the database write (which may yield on
PostgreSQL), so two writers never decide on the same state. ``now`` is a monotonic clock (expiry
must not jump with the wall clock); rows carry wall-clock deadlines (:mod:`.rows`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import gevent.lock

from grasp.nostr.address import DeletionRequest
from grasp.nostr.event import Event, supersedes
from grasp.nostr.nip34 import Announcement, PullRequest, RepositoryState
from grasp.purgatory import persistence, startup
from grasp.purgatory.entries import (
    AddOutcome,
    HeldAnnouncement,
    HeldPlaceholder,
    HeldPr,
    HeldState,
    Source,
    SweepResult,
)
from grasp.purgatory.expiry import log_expired
from grasp.purgatory.holdings import Holdings
from grasp.purgatory.refresh import refresh as refresh_from_db
from grasp.purgatory.rows import (
    Clock,
    Clocks,
    Entry,
    event_of,
    held_row,
    placeholder_row,
)
from grasp.store.base import EventStore, SaveOutcome
from grasp.store.held import ExpiredRow, HeldChanges, PlaceholderKey

logger = logging.getLogger(__name__)

DEFAULT_EXPIRY_SECS = 1800.0
EXPIRED_MEMORY_SECS = 7 * 86400.0


class PurgatoryStore(Holdings):
    """Holdings (:mod:`.holdings`, the reads) plus every change, written through."""

    def __init__(
        self,
        *,
        now: Clock = time.monotonic,
        wall: Clock = time.time,
        expiry_secs: float = DEFAULT_EXPIRY_SECS,
        expired_memory_secs: float = EXPIRED_MEMORY_SECS,
        db: EventStore | None = None,
        shared: bool = False,
    ) -> None:
        super().__init__(now, expiry_secs)
        #: S19.2: other nodes change the same tables; :meth:`refresh` reloads what they did.
        self.shared = shared
        self._held_version = 0
        self.wall = wall
        self.expired_memory_secs = expired_memory_secs
        self.db = db
        self._clocks = Clocks(now, wall)
        self._writer = gevent.lock.RLock()

    # --- adding -------------------------------------------------------------------------------

    def add_state(
        self,
        state: RepositoryState,
        source: Source = Source.DIRECT,
        *,
        extend_owners: Iterable[str] = (),
    ) -> AddOutcome:
        """Hold a state event of its identifier (S1.3); a held id is ``DUPLICATE``.

        ``extend_owners``: restart the expiry of these owners' held announcements of the
        identifier in the same transaction (an authorised state for them arrived).
        """
        with self._writer:
            with self._lock:
                if self._holds(state.event.id):
                    return AddOutcome.DUPLICATE
                entry = HeldState(state, source, self._deadline())
                extended = self._extensions(extend_owners, state.identifier)
                changes = self._hold_changes(entry, extend=extended)
            self._commit(changes)
            with self._lock:
                self._insert_state(entry)
                self._apply_extensions(extended)
            return AddOutcome.ADDED

    def add_pr(self, pr: PullRequest, source: Source = Source.DIRECT) -> AddOutcome:
        """Hold a PR/PR-update by event id; it takes over the placeholders of its id in the
        repositories of its identifiers (``REPLACED``).

        S14.3: the signed event wins. A placeholder with the same commit is simply dropped
        (the release points the ref at it); one with another commit is marked expired, so the
        Releaser deletes its ref (unless the release already moved it) and prunes its objects.
        """
        with self._writer:
            with self._lock:
                if pr.event_id in self._prs or self._holds_other_than_pr(pr.event_id):
                    return AddOutcome.DUPLICATE
                taken = [
                    p
                    for p in self._placeholders.values()
                    if p.event_id == pr.event_id and (p.identifier in pr.identifiers or not p.owner)
                ]
                lost = [p for p in taken if p.commit != pr.commit and p.owner]
                entry = HeldPr(pr.event_id, pr.commit, pr, source, self._deadline())
                changes = self._hold_changes(entry).merged(
                    HeldChanges(
                        drop_placeholders=tuple(p.key for p in taken if p not in lost),
                        placeholders=tuple(
                            placeholder_row(p, self._clocks, expired=True) for p in lost
                        ),
                    )
                )
            self._commit(changes)
            with self._lock:
                for placeholder in taken:
                    del self._placeholders[placeholder.key]
                self._doomed.update((p.key, p) for p in lost)
                self._insert_pr(entry)
            return AddOutcome.REPLACED if taken else AddOutcome.ADDED

    def add_placeholder(
        self, event_id: str, commit: str, owner: str = "", identifier: str = ""
    ) -> AddOutcome:
        """Remember a push to ``refs/nostr/<event_id>`` of ``owner``'s ``identifier`` that came
        before its PR event (S1.3). A push of another commit to the same ref replaces the
        commit (``REPLACED``) but keeps the deadline: pushing again buys no time."""
        key = (event_id, owner, identifier)
        with self._writer:
            with self._lock:
                if event_id in self._prs or self._holds_other_than_pr(event_id):
                    return AddOutcome.DUPLICATE
                held = self._placeholders.get(key)
                if held is not None and held.commit == commit:
                    return AddOutcome.DUPLICATE
                deadline = held.expires_at if held is not None else self._deadline()
                entry = HeldPlaceholder(event_id, commit, owner, identifier, deadline)
            self._commit(HeldChanges(placeholders=(placeholder_row(entry, self._clocks),)))
            with self._lock:
                self._placeholders[key] = entry
                self._doomed.pop(key, None)  # pushed again before its cleanup ran: alive again
            return AddOutcome.REPLACED if held is not None else AddOutcome.ADDED

    def add_announcement(
        self, announcement: Announcement, source: Source = Source.DIRECT
    ) -> AddOutcome:
        """Hold a new announcement; a newer version of the same (owner, d) replaces the held one."""
        key = (announcement.owner, announcement.identifier)
        with self._writer:
            with self._lock:
                if self._holds(announcement.event.id):
                    return AddOutcome.DUPLICATE
                held = self._announcements.get(key)
                if held is not None and not supersedes(announcement.event, held.announcement.event):
                    return AddOutcome.STALE
                entry = HeldAnnouncement(announcement, source, self._deadline())
                replaced = (held.announcement.event.id,) if held is not None else ()
                changes = HeldChanges(unhold=replaced).merged(self._hold_changes(entry))
            self._commit(changes)
            with self._lock:
                if held is not None:
                    self._drop_announcement(key)
                self._insert_announcement(entry)
            return AddOutcome.REPLACED if held is not None else AddOutcome.ADDED

    # --- removing -----------------------------------------------------------------------------

    def remove(self, event_id: str) -> bool:
        """Drop whatever is held under ``event_id`` (unauthorised, deleted): the event, or its
        open placeholders (their refs stay; the caller owns them). Not expiry."""
        with self._writer:
            with self._lock:
                held = self._holds(event_id)
                keys = tuple(k for k in self._placeholders if k[0] == event_id)
            if not held and not keys:
                return False
            self._commit(HeldChanges(unhold=(event_id,) if held else (), drop_placeholders=keys))
            with self._lock:
                self._remove_entry(event_id)
                for key in keys:
                    del self._placeholders[key]
            return True

    def save_and_unhold(
        self, store: EventStore, event: Event, event_ids: Iterable[str]
    ) -> SaveOutcome:
        """Store ``event`` and drop the held ``event_ids`` in one transaction (S9.1): a
        release (``event_ids`` = its own id), or a deletion and the held events it deletes.
        The held entries go whatever the save's outcome; if the save raises, nothing changed."""
        return self.save_all_and_unhold(store, [event], event_ids)[0]

    def save_all_and_unhold(
        self, store: EventStore, events: Sequence[Event], event_ids: Iterable[str]
    ) -> list[SaveOutcome]:
        """:meth:`save_and_unhold` of several events in one transaction (a state and the
        announcements it promotes, S8.2); the outcomes in the order of ``events``."""
        with self._writer:
            with self._lock:
                ids = tuple(i for i in dict.fromkeys(event_ids) if self._holds(i))
            unhold = HeldChanges(unhold=ids) if ids and self.db is not None else None
            outcomes = store.save_all(events, held=unhold)
            with self._lock:
                for event_id in ids:
                    self._remove_entry(event_id)
            return outcomes

    def promote_announcement(self, owner: str, identifier: str) -> Announcement | None:
        """Take an announcement out of purgatory because its repository now has data (S8.2).

        The release workflow stores it with :meth:`save_and_unhold` instead (one transaction)."""
        with self._writer:
            held = self.announcement(owner, identifier)
            if held is None:
                return None
            self._commit(HeldChanges(unhold=(held.event.id,)))
            with self._lock:
                self._drop_announcement((owner, identifier))
            return held

    def extend_announcement(self, owner: str, identifier: str) -> bool:
        """Restart the expiry of a held announcement
        (an authorised state or push for it arrived)."""
        with self._writer:
            with self._lock:
                if (owner, identifier) not in self._announcements:
                    return False
                extended = self._extensions([owner], identifier)
            self._commit(HeldChanges(extend=self._extend_rows(extended)))
            with self._lock:
                self._apply_extensions(extended)
            return True

    def remove_deleted(self, request: DeletionRequest) -> list[str]:
        """Apply a NIP-09 deletion to held events (S10.4): returns the removed ids."""
        with self._writer:
            doomed = self.deleted_by(request)
            self._commit(HeldChanges(unhold=tuple(doomed)))
            with self._lock:
                for event_id in doomed:
                    self._remove_entry(event_id)
        return doomed

    def forget_placeholders(self, keys: Iterable[PlaceholderKey]) -> None:
        """The Releaser cleaned these expired placeholders up (ref deleted, objects pruned)."""
        with self._writer:
            with self._lock:
                gone = tuple(k for k in keys if k in self._doomed)
            self._commit(HeldChanges(drop_placeholders=gone))
            with self._lock:
                for key in gone:
                    del self._doomed[key]

    # --- expiry -------------------------------------------------------------------------------

    def sweep(self) -> SweepResult:
        """Remove every entry whose lifetime is over (S1.4) and forget week-old expired ids."""
        now = self.now()
        with self._writer:
            with self._lock:
                changes, result, expired = self._expiry(now)
            self._commit(changes)
            with self._lock:
                self._apply_expiry(now, result, expired)
        log_expired(*expired)
        return result

    def _expiry(
        self, now: float
    ) -> tuple[HeldChanges, SweepResult, tuple[list, list, list, list[HeldPlaceholder]]]:
        """What a sweep at ``now`` removes: the rows' changes, the result, the entries."""
        states = [h for s in self._states.values() for h in s.values() if h.expires_at <= now]
        prs = [h for h in self._prs.values() if h.expires_at <= now]
        announcements = [h for h in self._announcements.values() if h.expires_at <= now]
        placeholders = [p for p in self._placeholders.values() if p.expires_at <= now]
        result = SweepResult(
            states=tuple(h.state for h in states),
            prs=tuple(h.pr for h in prs),
            placeholders=tuple(p.event_id for p in placeholders),
            announcements=tuple(h.announcement for h in announcements),
        )
        horizon = now - self.expired_memory_secs
        forget = any(t <= horizon for t in self._expired.values())
        stamp = self._clocks.to_wall(now)
        changes = HeldChanges(
            unhold=tuple(result.expired_ids),
            drop_placeholders=tuple(p.key for p in placeholders if not p.owner),
            placeholders=tuple(
                placeholder_row(p, self._clocks, expired=True) for p in placeholders if p.owner
            ),
            expire=tuple(ExpiredRow(i, stamp) for i in result.expired_ids),
            forget_expired_before=self._clocks.to_wall(horizon) if forget else None,
        )
        return changes, result, (states, prs, announcements, placeholders)

    def _apply_expiry(
        self, now: float, result: SweepResult, expired: tuple[list, list, list, list]
    ) -> None:
        for event_id in result.expired_ids:
            self._remove_entry(event_id)
            self._expired[event_id] = now
        for placeholder in expired[3]:
            del self._placeholders[placeholder.key]
            if placeholder.owner:  # a repository to clean; imported ones name none
                self._doomed[placeholder.key] = placeholder
        horizon = now - self.expired_memory_secs
        if any(t <= horizon for t in self._expired.values()):
            self._expired = {i: t for i, t in self._expired.items() if t > horizon}

    def is_expired(self, event_id: str) -> bool:
        """Whether ``event_id`` expired from purgatory within the memory window (S1.4)."""
        with self._lock:
            when = self._expired.get(event_id)
            return when is not None and self.now() - when < self.expired_memory_secs

    # --- start-up (S9.1) ----------------------------------------------------------------------

    def load(self) -> list[str]:
        """Rebuild the cache from the database (start-up); returns the pending identifiers.

        A row the current rules refuse is logged and dropped from the table.
        """
        return startup.load(self)

    def refresh(self) -> bool:
        """Cluster mode (S19.2, one truth): apply to the cache what any node changed in the
        shared tables since the last look (the changed rows only, :mod:`.refresh`); one small
        read when nothing changed. Called where a
        decision starts (admission, push authorisation, release, sweep), never inside a read.
        A store that is not shared does nothing: its cache is the truth."""
        return refresh_from_db(self) if self.shared else False

    def adopt(
        self, entries: Iterable[Entry | HeldPlaceholder], expired: dict[str, float]
    ) -> list[str]:
        """Take in entries from elsewhere (a version-1 state file) in one transaction;
        entries already held are skipped. Returns the identifiers that got held events."""
        return startup.adopt(self, entries, expired)

    def restore(self, path: Path) -> list[str]:
        """Import a version-1 ``purgatory-state.json`` (downtime subtracted) into the tables,
        then delete it; returns every identifier that got held events (S9.1 upgrade).

        A missing file restores nothing. A corrupt or unsupported file raises
        :class:`~grasp.purgatory.persistence.PurgatoryFileError` and is left in place.
        """
        return persistence.restore(self, Path(path))

    def save(self, path: Path) -> None:
        """Write every held entry and expired id to ``path`` in the version-1 file format.

        The relay no longer calls it (the tables are the record, S9.1); it is the export an
        older relay wrote on shutdown, kept so the upgrade path can be tested with real files.
        """
        persistence.save(self, Path(path))

    # --- internals ----------------------------------------------------------------------------

    def _commit(self, changes: HeldChanges) -> None:
        """Write ``changes`` through to the database before memory changes (S9.1)."""
        if self.db is not None and changes:
            self.db.write_held(changes)

    def _deadline(self) -> float:
        return self.now() + self.expiry_secs

    def _hold_changes(
        self, entry: Entry, extend: list[tuple[HeldAnnouncement, float]] | None = None
    ) -> HeldChanges:
        event_id = event_of(entry).id
        return HeldChanges(
            unexpire=(event_id,) if event_id in self._expired else (),
            hold=(held_row(entry, self._clocks),),
            extend=self._extend_rows(extend or []),
        )

    def _extensions(
        self, owners: Iterable[str], identifier: str
    ) -> list[tuple[HeldAnnouncement, float]]:
        deadline = self._deadline()
        found = (self._announcements.get((owner, identifier)) for owner in owners)
        return [(h, deadline) for h in found if h is not None and h.expires_at < deadline]

    def _extend_rows(
        self, extended: list[tuple[HeldAnnouncement, float]]
    ) -> tuple[tuple[str, float], ...]:
        return tuple((h.announcement.event.id, self._clocks.to_wall(at)) for h, at in extended)

    @staticmethod
    def _apply_extensions(extended: list[tuple[HeldAnnouncement, float]]) -> None:
        for held, deadline in extended:
            held.expires_at = deadline
