"""The in-memory purgatory store (S1-S3, S9), with an injected clock.

Three holdings, as upstream keeps them (protocol.md §4.6):

* state events (30618) keyed by identifier, several per identifier (different authors, S1.3);
* PR / PR-update events (1618/1619) keyed by event id, and *placeholders* for pushes to
  ``refs/nostr/<id>`` that arrived before their event;
* new announcements (30617) keyed by (owner, d), held until their repository has data.

Every entry expires ``expiry_secs`` after it was added (S1.4, 30 min); :meth:`sweep` removes
them and remembers their ids for ``expired_memory_secs`` (7 days) so a *synced* copy is refused.
Removal for any other reason (release, authorisation failure, deletion) is not expiry.

All methods take one lock and never block or yield: callers are relay greenlets, the Releaser
and FetchActors. The lock is the unpatched OS lock so a gevent thread-pool worker may call in
too (a patched lock shared with a pool thread ends in ``LoopExit``). ``now`` is a monotonic clock
(expiry must not jump with the wall clock); ``wall`` is
only used to stamp the persisted file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gevent.monkey import get_original

from grasp.nostr.address import DeletionRequest
from grasp.nostr.event import Event, supersedes
from grasp.nostr.nip34 import Announcement, PullRequest, RepositoryState
from grasp.purgatory import persistence
from grasp.purgatory.entries import (
    AddOutcome,
    HeldAnnouncement,
    HeldPr,
    HeldState,
    Source,
    SweepResult,
)

logger = logging.getLogger(__name__)

_OsRLock = get_original("_thread", "RLock")

DEFAULT_EXPIRY_SECS = 1800.0
EXPIRED_MEMORY_SECS = 7 * 86400.0
Clock = Callable[[], float]


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
    ) -> None:
        self.now = now
        self.wall = wall
        self.expiry_secs = expiry_secs
        self.expired_memory_secs = expired_memory_secs
        self._lock = _OsRLock()
        self._states: dict[str, dict[str, HeldState]] = {}  # identifier -> event id -> entry
        self._prs: dict[str, HeldPr] = {}  # event id -> entry (insertion order = PR order)
        self._prs_by_identifier: dict[str, dict[str, None]] = {}  # identifier -> ordered PR ids
        self._announcements: dict[tuple[str, str], HeldAnnouncement] = {}
        self._state_ids: dict[str, str] = {}  # event id -> identifier
        self._announcement_ids: dict[str, tuple[str, str]] = {}  # event id -> (owner, d)
        self._expired: dict[str, float] = {}  # event id -> monotonic time it expired

    # --- adding -------------------------------------------------------------------------------

    def add_state(self, state: RepositoryState, source: Source = Source.DIRECT) -> AddOutcome:
        """Hold a state event of its identifier (S1.3); a held id is ``DUPLICATE``."""
        with self._lock:
            if self._holds(state.event.id):
                return AddOutcome.DUPLICATE
            entry = HeldState(state, source, self._deadline())
            self._insert_state(entry)
            return AddOutcome.ADDED

    def add_pr(self, pr: PullRequest, source: Source = Source.DIRECT) -> AddOutcome:
        """Hold a PR/PR-update by event id; it takes over a placeholder of the same id
        (``REPLACED``).

        Whether the placeholder's commit matches is the write policy's question (S10.4), asked
        through :meth:`placeholder_commit` before calling this.
        """
        with self._lock:
            held = self._prs.get(pr.event_id)
            if (held is not None and held.pr is not None) or self._holds_other_than_pr(pr.event_id):
                return AddOutcome.DUPLICATE
            if held is not None:
                self._drop_pr(pr.event_id)
            self._insert_pr(HeldPr(pr.event_id, pr.commit, pr, source, self._deadline()))
            return AddOutcome.REPLACED if held is not None else AddOutcome.ADDED

    def add_placeholder(self, event_id: str, commit: str) -> AddOutcome:
        """Remember a push to ``refs/nostr/<event_id>`` that came before its PR event (S1.3)."""
        with self._lock:
            if event_id in self._prs or self._holds_other_than_pr(event_id):
                return AddOutcome.DUPLICATE
            self._insert_pr(HeldPr(event_id, commit, None, Source.DIRECT, self._deadline()))
            return AddOutcome.ADDED

    def add_announcement(
        self, announcement: Announcement, source: Source = Source.DIRECT
    ) -> AddOutcome:
        """Hold a new announcement; a newer version of the same (owner, d) replaces the held one."""
        key = (announcement.owner, announcement.identifier)
        with self._lock:
            if self._holds(announcement.event.id):
                return AddOutcome.DUPLICATE
            held = self._announcements.get(key)
            if held is not None:
                if not supersedes(announcement.event, held.announcement.event):
                    return AddOutcome.STALE
                self._drop_announcement(key)
            self._insert_announcement(HeldAnnouncement(announcement, source, self._deadline()))
            return AddOutcome.REPLACED if held is not None else AddOutcome.ADDED

    # --- reading ------------------------------------------------------------------------------

    def states_for(self, identifier: str) -> list[RepositoryState]:
        """Held states of ``identifier``, oldest first (created_at, then id) as release wants
        (S8.2)."""
        with self._lock:
            states = [entry.state for entry in self._states.get(identifier, {}).values()]
        return sorted(states, key=lambda s: _event_order(s.event))

    def prs_for(self, identifier: str) -> list[PullRequest]:
        """Held PR events (not placeholders) naming ``identifier`` in any ``a`` tag, in arrival
        order."""
        with self._lock:
            ids = self._prs_by_identifier.get(identifier, {})
            return [pr for pr in (self._prs[i].pr for i in ids) if pr is not None]

    def pr(self, event_id: str) -> PullRequest | None:
        with self._lock:
            held = self._prs.get(event_id)
            return held.pr if held else None

    def placeholder_commit(self, event_id: str) -> str | None:
        """The pushed commit of a placeholder for ``event_id``, or None when there is none."""
        with self._lock:
            held = self._prs.get(event_id)
            return held.commit if held is not None and held.pr is None else None

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
        """Every identifier with held states or
        held PRs, sorted (the Scheduler's rebuild source)."""
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
            if event_id in self._state_ids:
                return self._states[self._state_ids[event_id]][event_id].state.event
            held_pr = self._prs.get(event_id)
            if held_pr is not None and held_pr.pr is not None:
                return held_pr.pr.event
            key = self._announcement_ids.get(event_id)
            return self._announcements[key].announcement.event if key else None

    def held_for(self, event_id: str) -> float | None:
        """Seconds since ``event_id`` entered purgatory (release latency), None if not held.

        Derived from the entry's deadline; an announcement whose expiry was extended reports the
        time since its last extension.
        """
        with self._lock:
            entry: HeldState | HeldPr | HeldAnnouncement | None = None
            if event_id in self._state_ids:
                entry = self._states[self._state_ids[event_id]][event_id]
            elif event_id in self._prs:
                entry = self._prs[event_id]
            elif event_id in self._announcement_ids:
                entry = self._announcements[self._announcement_ids[event_id]]
            if entry is None:
                return None
            return max(0.0, self.now() - (entry.expires_at - self.expiry_secs))

    def counts(self) -> dict[str, int]:
        """Held entries by category (for the ``purgatory_events{kind}`` gauge, S13.1)."""
        with self._lock:
            prs = [h.pr for h in self._prs.values()]
            return {
                "30617": len(self._announcements),
                "30618": len(self._state_ids),
                "1618": sum(1 for p in prs if p is not None and p.event.kind == 1618),
                "1619": sum(1 for p in prs if p is not None and p.event.kind == 1619),
                "placeholder": sum(1 for p in prs if p is None),
            }

    # --- removing -----------------------------------------------------------------------------

    def remove(self, event_id: str) -> bool:
        """Drop whatever is held under
        ``event_id`` (released, unauthorised, deleted). Not expiry."""
        with self._lock:
            if event_id in self._state_ids:
                identifier = self._state_ids.pop(event_id)
                del self._states[identifier][event_id]
                if not self._states[identifier]:
                    del self._states[identifier]
                return True
            if event_id in self._prs:
                self._drop_pr(event_id)
                return True
            key = self._announcement_ids.get(event_id)
            if key is not None:
                self._drop_announcement(key)
                return True
            return False

    def promote_announcement(self, owner: str, identifier: str) -> Announcement | None:
        """Take an announcement out of purgatory because its repository now has data (S8.2)."""
        with self._lock:
            held = self._announcements.get((owner, identifier))
            if held is None:
                return None
            self._drop_announcement((owner, identifier))
            return held.announcement

    def extend_announcement(self, owner: str, identifier: str) -> bool:
        """Restart the expiry of a held announcement
        (an authorised state or push for it arrived)."""
        with self._lock:
            held = self._announcements.get((owner, identifier))
            if held is None:
                return False
            held.expires_at = max(held.expires_at, self._deadline())
            return True

    def remove_deleted(self, request: DeletionRequest) -> list[str]:
        """Apply a NIP-09 deletion to held events (S10.4): returns the removed ids."""
        with self._lock:
            doomed = [e.id for e in self._held_events() if request.deletes(e)]
            for event_id in doomed:
                self.remove(event_id)
        return doomed

    # --- expiry -------------------------------------------------------------------------------

    def sweep(self) -> SweepResult:
        """Remove every entry whose lifetime is over (S1.4) and forget week-old expired ids."""
        now = self.now()
        with self._lock:
            states = [h for s in self._states.values() for h in s.values() if h.expires_at <= now]
            prs = [h for h in self._prs.values() if h.expires_at <= now]
            announcements = [h for h in self._announcements.values() if h.expires_at <= now]
            result = SweepResult(
                states=tuple(h.state for h in states),
                prs=tuple(h.pr for h in prs if h.pr is not None),
                placeholders=tuple(h.event_id for h in prs if h.pr is None),
                announcements=tuple(h.announcement for h in announcements),
            )
            for event_id in [*result.expired_ids, *result.placeholders]:
                self.remove(event_id)
            for event_id in result.expired_ids:
                self._expired[event_id] = now
            horizon = now - self.expired_memory_secs
            self._expired = {i: t for i, t in self._expired.items() if t > horizon}
        _log_expired(states, prs, announcements)
        return result

    def is_expired(self, event_id: str) -> bool:
        """Whether ``event_id`` expired from purgatory within the memory window (S1.4)."""
        with self._lock:
            when = self._expired.get(event_id)
            return when is not None and self.now() - when < self.expired_memory_secs

    # --- persistence (S9.1) -------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write every held entry and expired id to ``path`` atomically (temp file + rename)."""
        persistence.save(self, Path(path))

    def restore(self, path: Path) -> list[str]:
        """Load ``path`` (downtime subtracted), delete it, return every restored identifier.

        A missing file restores nothing. A corrupt or unsupported file raises
        :class:`~grasp.purgatory.persistence.PurgatoryFileError` and is left in place.
        """
        return persistence.restore(self, Path(path))

    # --- internals (also used by grasp.purgatory.persistence) ---------------------------------

    def _deadline(self) -> float:
        return self.now() + self.expiry_secs

    def _holds(self, event_id: str) -> bool:
        held_pr = self._prs.get(event_id)
        return (
            event_id in self._state_ids
            or event_id in self._announcement_ids
            or (held_pr is not None and held_pr.pr is not None)
        )

    def _holds_other_than_pr(self, event_id: str) -> bool:
        return event_id in self._state_ids or event_id in self._announcement_ids

    def _held_events(self) -> Iterator[Event]:
        for by_id in self._states.values():
            yield from (h.state.event for h in by_id.values())
        yield from (h.pr.event for h in self._prs.values() if h.pr is not None)
        yield from (h.announcement.event for h in self._announcements.values())

    def _insert_state(self, entry: HeldState) -> None:
        identifier = entry.state.identifier
        self._states.setdefault(identifier, {})[entry.event_id] = entry
        self._state_ids[entry.event_id] = identifier
        self._expired.pop(entry.event_id, None)

    def _insert_pr(self, entry: HeldPr) -> None:
        self._prs[entry.event_id] = entry
        if entry.pr is not None:
            for identifier in entry.pr.identifiers:
                self._prs_by_identifier.setdefault(identifier, {})[entry.event_id] = None
            self._expired.pop(entry.event_id, None)

    def _insert_announcement(self, entry: HeldAnnouncement) -> None:
        key = (entry.announcement.owner, entry.announcement.identifier)
        self._announcements[key] = entry
        self._announcement_ids[entry.announcement.event.id] = key
        self._expired.pop(entry.announcement.event.id, None)

    def _drop_pr(self, event_id: str) -> None:
        entry = self._prs.pop(event_id)
        if entry.pr is None:
            return
        for identifier in entry.pr.identifiers:
            ids = self._prs_by_identifier.get(identifier, {})
            ids.pop(event_id, None)
            if not ids:
                self._prs_by_identifier.pop(identifier, None)

    def _drop_announcement(self, key: tuple[str, str]) -> None:
        entry = self._announcements.pop(key)
        del self._announcement_ids[entry.announcement.event.id]


def _log_expired(
    states: list[HeldState], prs: list[HeldPr], announcements: list[HeldAnnouncement]
) -> None:
    """A user's event expiring means a push
    never came: INFO. Synced events and placeholders: DEBUG."""
    entries = [
        *(("state", h.state.identifier, h.event_id, h.source) for h in states),
        *(("PR", h.pr.identifier, h.event_id, h.source) for h in prs if h.pr is not None),
        *(
            ("announcement", h.announcement.identifier, h.announcement.event.id, h.source)
            for h in announcements
        ),
    ]
    for what, identifier, event_id, source in entries:
        level = logging.INFO if source is Source.DIRECT else logging.DEBUG
        logger.log(
            level,
            "expired %s %s of %s from purgatory (%s)",
            what,
            event_id,
            identifier,
            source.value,
        )
    for held in prs:
        if held.pr is None:
            logger.debug(
                "expired placeholder for refs/nostr/%s (commit %s)", held.event_id, held.commit
            )
    if states or prs or announcements:
        logger.info(
            "purgatory expiry removed %d states, %d PR entries, %d announcements",
            len(states),
            len(prs),
            len(announcements),
        )
