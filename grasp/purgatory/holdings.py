"""Purgatory's in-memory cache (S1.3, S2.3, S3.1): the indexes and every question asked of them.

:class:`Holdings` is the read side of :class:`~grasp.purgatory.store.PurgatoryStore`: states by
identifier, PRs by event id (with an index by identifier), announcements by (owner, d), open
and expired placeholders by (event id, owner, identifier), expired ids. Readers take the one
unpatched OS lock and never yield; the store's writers change the indexes only after the
database committed (S9.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from gevent.monkey import get_original

from grasp.nostr.address import DeletionRequest
from grasp.nostr.event import Event
from grasp.nostr.nip34 import Announcement, PullRequest, RepositoryState
from grasp.purgatory.entries import HeldAnnouncement, HeldPlaceholder, HeldPr, HeldState
from grasp.purgatory.rows import Entry, event_of
from grasp.store.held import PlaceholderKey

_OsRLock = get_original("_thread", "RLock")


def _event_order(event: Event) -> tuple[int, str]:
    return (event.created_at, event.id)


class Holdings:
    def __init__(self, now: Callable[[], float], expiry_secs: float) -> None:
        self.now = now
        self.expiry_secs = expiry_secs
        self._lock = _OsRLock()
        self._states: dict[str, dict[str, HeldState]] = {}  # identifier -> event id -> entry
        self._prs: dict[str, HeldPr] = {}  # event id -> entry (insertion order = PR order)
        self._prs_by_identifier: dict[str, dict[str, None]] = {}  # identifier -> ordered PR ids
        self._announcements: dict[tuple[str, str], HeldAnnouncement] = {}
        # identifier -> its owners, in the order of ``_announcements`` (P7: one lookup per
        # held event instead of a scan of every held announcement)
        self._owners_by_identifier: dict[str, dict[str, None]] = {}
        self._state_ids: dict[str, str] = {}  # event id -> identifier
        self._announcement_ids: dict[str, tuple[str, str]] = {}  # event id -> (owner, d)
        self._placeholders: dict[PlaceholderKey, HeldPlaceholder] = {}  # open ones
        self._doomed: dict[PlaceholderKey, HeldPlaceholder] = {}  # expired, awaiting cleanup
        self._expired: dict[str, float] = {}  # event id -> monotonic time it expired

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
            owners = self._owners_by_identifier.get(identifier, {})
            return [self._announcements[(owner, identifier)].announcement for owner in owners]

    def held_announcements(self) -> list[Announcement]:
        """Every held announcement, in arrival order (peers sync what they authorise, S17.1)."""
        with self._lock:
            return [h.announcement for h in self._announcements.values()]

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

    # --- the indexes (callers hold the lock) --------------------------------------------------

    def _clear(self) -> None:
        """Forget everything (a refresh from the shared database follows, S19.2)."""
        for index in (
            self._states,
            self._prs,
            self._prs_by_identifier,
            self._announcements,
            self._state_ids,
            self._announcement_ids,
            self._placeholders,
            self._doomed,
            self._expired,
        ):
            index.clear()

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
        self._owners_by_identifier.setdefault(key[1], {})[key[0]] = None
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
        owners = self._owners_by_identifier.get(key[1], {})
        owners.pop(key[0], None)
        if not owners:
            self._owners_by_identifier.pop(key[1], None)
        del self._announcement_ids[entry.announcement.event.id]
