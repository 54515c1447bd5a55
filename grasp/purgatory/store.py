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
from collections.abc import Iterable, Iterator
from pathlib import Path

import gevent.lock
from gevent.monkey import get_original

from grasp.nostr.address import DeletionRequest
from grasp.nostr.event import Event, InvalidEvent, supersedes
from grasp.nostr.nip34 import Announcement, PullRequest, RepositoryState
from grasp.purgatory import persistence
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
from grasp.purgatory.rows import (
    Clock,
    Clocks,
    Entry,
    entry_from_row,
    event_of,
    held_row,
    placeholder_from_row,
    placeholder_row,
)
from grasp.store.base import EventStore, SaveOutcome
from grasp.store.held import ExpiredRow, HeldChanges, PlaceholderKey

logger = logging.getLogger(__name__)

_OsRLock = get_original("_thread", "RLock")

DEFAULT_EXPIRY_SECS = 1800.0
EXPIRED_MEMORY_SECS = 7 * 86400.0


def _event_order(event: Event) -> tuple[int, str]:
    return (event.created_at, event.id)


class PurgatoryStore:
    def __init__(
        self,
        *,
        now: Clock = time.monotonic,
        wall: Clock = time.time,
        expiry_secs: float = DEFAULT_EXPIRY_SECS,
        expired_memory_secs: float = EXPIRED_MEMORY_SECS,
        db: EventStore | None = None,
    ) -> None:
        self.now = now
        self.wall = wall
        self.expiry_secs = expiry_secs
        self.expired_memory_secs = expired_memory_secs
        self.db = db
        self._clocks = Clocks(now, wall)
        self._lock = _OsRLock()
        self._writer = gevent.lock.RLock()
        self._states: dict[str, dict[str, HeldState]] = {}  # identifier -> event id -> entry
        self._prs: dict[str, HeldPr] = {}  # event id -> entry (insertion order = PR order)
        self._prs_by_identifier: dict[str, dict[str, None]] = {}  # identifier -> ordered PR ids
        self._announcements: dict[tuple[str, str], HeldAnnouncement] = {}
        self._state_ids: dict[str, str] = {}  # event id -> identifier
        self._announcement_ids: dict[str, tuple[str, str]] = {}  # event id -> (owner, d)
        self._placeholders: dict[PlaceholderKey, HeldPlaceholder] = {}  # open ones
        self._doomed: dict[PlaceholderKey, HeldPlaceholder] = {}  # expired, awaiting cleanup
        self._expired: dict[str, float] = {}  # event id -> monotonic time it expired

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

    # --- reading ------------------------------------------------------------------------------

    def states_for(self, identifier: str) -> list[RepositoryState]:
        """Held states of ``identifier``, oldest first (created_at, then id) as release wants
        (S8.2)."""
        with self._lock:
            states = [entry.state for entry in self._states.get(identifier, {}).values()]
        return sorted(states, key=lambda s: _event_order(s.event))

    def prs_for(self, identifier: str) -> list[PullRequest]:
        """Held PR events naming ``identifier`` in any ``a`` tag, in arrival order."""
        with self._lock:
            return [self._prs[i].pr for i in self._prs_by_identifier.get(identifier, {})]

    def pr(self, event_id: str) -> PullRequest | None:
        with self._lock:
            held = self._prs.get(event_id)
            return held.pr if held else None

    def placeholder_commit(self, event_id: str) -> str | None:
        """The pushed commit of an open placeholder for ``event_id`` (the first one pushed, if
        several repositories have one), or None when there is none."""
        with self._lock:
            return next(
                (p.commit for p in self._placeholders.values() if p.event_id == event_id), None
            )

    def placeholders_in(self, owner: str, identifier: str) -> int:
        """How many open placeholders ``owner``'s repository ``identifier`` has (S14.3)."""
        with self._lock:
            return sum(
                1
                for p in self._placeholders.values()
                if (p.owner, p.identifier) == (owner, identifier)
            )

    def open_placeholder_ids(self, owner: str, identifier: str) -> set[str]:
        """Event ids with an open placeholder in ``owner``'s repository ``identifier``."""
        with self._lock:
            repo = (owner, identifier)
            return {
                p.event_id for p in self._placeholders.values() if (p.owner, p.identifier) == repo
            }

    def expired_placeholders(self, identifier: str) -> list[HeldPlaceholder]:
        """Placeholders of ``identifier``'s repositories whose ref and objects await cleanup."""
        with self._lock:
            return [p for p in self._doomed.values() if p.identifier == identifier]

    def cleanup_identifiers(self) -> list[str]:
        """Identifiers with expired placeholders awaiting cleanup, sorted."""
        with self._lock:
            return sorted({p.identifier for p in self._doomed.values()})

    def pr_clone_urls(self, identifier: str) -> list[str]:
        """Clone URLs of the held PRs of ``identifier``: PR arrival order, tag order, no repeats
        (S3.1)."""
        urls = (url for pr in self.prs_for(identifier) for url in pr.clone_urls)
        return list(dict.fromkeys(urls))

    def announcement(self, owner: str, identifier: str) -> Announcement | None:
        with self._lock:
            held = self._announcements.get((owner, identifier))
            return held.announcement if held else None

    def announcements_for(self, identifier: str) -> list[Announcement]:
        """Held announcements of ``identifier`` by any owner, in arrival order."""
        with self._lock:
            return [h.announcement for (_, d), h in self._announcements.items() if d == identifier]

    def needed_oids(self, identifier: str) -> set[str]:
        """S2.3: union of what every held state and PR of ``identifier`` needs (present or not)."""
        needed: set[str] = set()
        for state in self.states_for(identifier):
            needed |= state.needed_oids
        needed.update(pr.commit for pr in self.prs_for(identifier))
        return needed

    def has_pending_events(self, identifier: str) -> bool:
        """S2.3: any held state of ``identifier`` or held PR (not placeholder) referencing it."""
        with self._lock:
            return bool(self._states.get(identifier)) or bool(
                self._prs_by_identifier.get(identifier)
            )

    def pending_identifiers(self) -> list[str]:
        """Every identifier with held states or held PRs, sorted (the Scheduler's rebuild
        source)."""
        with self._lock:
            names = set(self._states)
            names.update(self._prs_by_identifier)  # placeholders are never indexed here
        return sorted(names)

    def contains(self, event_id: str) -> bool:
        """Whether an *event* with this id is held (placeholders are not events)."""
        with self._lock:
            return self._holds(event_id)

    def get(self, event_id: str) -> Event | None:
        with self._lock:
            entry = self._entry(event_id)
            return None if entry is None else event_of(entry)

    def held_for(self, event_id: str) -> float | None:
        """Seconds since ``event_id`` entered purgatory (release latency), None if not held.

        Derived from the entry's deadline; an announcement whose expiry was extended reports the
        time since its last extension.
        """
        with self._lock:
            entry = self._entry(event_id)
            if entry is None:
                return None
            return max(0.0, self.now() - (entry.expires_at - self.expiry_secs))

    def counts(self) -> dict[str, int]:
        """Held entries by category (for the ``purgatory_events{kind}`` gauge, S13.1)."""
        with self._lock:
            kinds = [h.pr.event.kind for h in self._prs.values()]
            return {
                "30617": len(self._announcements),
                "30618": len(self._state_ids),
                "1618": kinds.count(1618),
                "1619": kinds.count(1619),
                "placeholder": len(self._placeholders),
            }

    def deleted_by(self, request: DeletionRequest) -> list[str]:
        """Ids of the held events a NIP-09 deletion removes (S10.4)."""
        with self._lock:
            return [e.id for e in self._held_events() if request.deletes(e)]

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
        with self._writer:
            with self._lock:
                ids = tuple(i for i in dict.fromkeys(event_ids) if self._holds(i))
            unhold = HeldChanges(unhold=ids) if ids and self.db is not None else None
            outcome = store.save(event, held=unhold) if unhold else store.save(event)
            with self._lock:
                for event_id in ids:
                    self._remove_entry(event_id)
            return outcome

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
        if self.db is None:
            return []
        snapshot = self.db.load_held()
        unusable: list[str] = []
        with self._writer:
            with self._lock:
                for row in snapshot.events:
                    try:
                        entry = entry_from_row(row, self._clocks)
                    except (ValueError, KeyError, TypeError, InvalidEvent) as exc:
                        logger.warning("dropping held event %s: %s", row.event_id, exc)
                        unusable.append(row.event_id)
                        continue
                    if not self._holds(event_of(entry).id):
                        self._insert(entry)
                for placeholder in snapshot.placeholders:
                    target = self._doomed if placeholder.expired else self._placeholders
                    target[placeholder.key] = placeholder_from_row(placeholder, self._clocks)
                now = self.now()
                for expired in snapshot.expired:
                    when = self._clocks.to_instant(expired.expired_at)
                    if now - when < self.expired_memory_secs:
                        self._expired[expired.event_id] = when
            self._commit(HeldChanges(unhold=tuple(unusable)))
        logger.info("purgatory loaded from %s: %s", self.db.location, self.counts())
        return self.pending_identifiers()

    def adopt(
        self, entries: Iterable[Entry | HeldPlaceholder], expired: dict[str, float]
    ) -> list[str]:
        """Take in entries from elsewhere (a version-1 state file) in one transaction;
        entries already held are skipped. Returns the identifiers that got held events."""
        with self._writer:
            with self._lock:
                new, seen = [], set()
                for entry in entries:
                    key = entry.key if isinstance(entry, HeldPlaceholder) else event_of(entry).id
                    if key not in seen and not self._known(entry):
                        seen.add(key)
                        new.append(entry)
                held = [e for e in new if not isinstance(e, HeldPlaceholder)]
                placeholders = [e for e in new if isinstance(e, HeldPlaceholder)]
                remembered = {i: t for i, t in expired.items() if i not in self._expired}
            self._commit(
                HeldChanges(
                    hold=tuple(held_row(e, self._clocks) for e in held),
                    placeholders=tuple(placeholder_row(p, self._clocks) for p in placeholders),
                    expire=tuple(
                        ExpiredRow(i, self._clocks.to_wall(t)) for i, t in remembered.items()
                    ),
                )
            )
            with self._lock:
                for placeholder in placeholders:
                    self._placeholders[placeholder.key] = placeholder
                for entry in held:
                    self._insert(entry)
                self._expired.update(remembered)
        return sorted({i for entry in held for i in _identifiers(entry)})

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

    def _holds(self, event_id: str) -> bool:
        return (
            event_id in self._state_ids
            or event_id in self._announcement_ids
            or event_id in self._prs
        )

    def _holds_other_than_pr(self, event_id: str) -> bool:
        return event_id in self._state_ids or event_id in self._announcement_ids

    def _known(self, entry: Entry | HeldPlaceholder) -> bool:
        if isinstance(entry, HeldPlaceholder):
            return entry.key in self._placeholders or self._holds(entry.event_id)
        return self._holds(event_of(entry).id)

    def _entry(self, event_id: str) -> Entry | None:
        if event_id in self._state_ids:
            return self._states[self._state_ids[event_id]][event_id]
        if event_id in self._prs:
            return self._prs[event_id]
        key = self._announcement_ids.get(event_id)
        return self._announcements[key] if key else None

    def _held_events(self) -> Iterator[Event]:
        for by_id in self._states.values():
            yield from (h.state.event for h in by_id.values())
        yield from (h.pr.event for h in self._prs.values())
        yield from (h.announcement.event for h in self._announcements.values())

    def _insert(self, entry: Entry) -> None:
        if isinstance(entry, HeldState):
            self._insert_state(entry)
        elif isinstance(entry, HeldPr):
            self._insert_pr(entry)
        else:
            self._insert_announcement(entry)

    def _insert_state(self, entry: HeldState) -> None:
        identifier = entry.state.identifier
        self._states.setdefault(identifier, {})[entry.event_id] = entry
        self._state_ids[entry.event_id] = identifier
        self._expired.pop(entry.event_id, None)

    def _insert_pr(self, entry: HeldPr) -> None:
        self._prs[entry.event_id] = entry
        for identifier in entry.pr.identifiers:
            self._prs_by_identifier.setdefault(identifier, {})[entry.event_id] = None
        self._expired.pop(entry.event_id, None)

    def _insert_announcement(self, entry: HeldAnnouncement) -> None:
        key = (entry.announcement.owner, entry.announcement.identifier)
        self._announcements[key] = entry
        self._announcement_ids[entry.announcement.event.id] = key
        self._expired.pop(entry.announcement.event.id, None)

    def _remove_entry(self, event_id: str) -> None:
        if event_id in self._state_ids:
            identifier = self._state_ids.pop(event_id)
            del self._states[identifier][event_id]
            if not self._states[identifier]:
                del self._states[identifier]
        elif event_id in self._prs:
            self._drop_pr(event_id)
        elif event_id in self._announcement_ids:
            self._drop_announcement(self._announcement_ids[event_id])

    def _drop_pr(self, event_id: str) -> None:
        entry = self._prs.pop(event_id)
        for identifier in entry.pr.identifiers:
            ids = self._prs_by_identifier.get(identifier, {})
            ids.pop(event_id, None)
            if not ids:
                self._prs_by_identifier.pop(identifier, None)

    def _drop_announcement(self, key: tuple[str, str]) -> None:
        entry = self._announcements.pop(key)
        del self._announcement_ids[entry.announcement.event.id]


def _identifiers(entry: Entry) -> tuple[str, ...]:
    if isinstance(entry, HeldState):
        return (entry.state.identifier,)
    if isinstance(entry, HeldPr):
        return entry.pr.identifiers
    return ()
