"""The release workflow (S8): the one function pushes and syncs both end in.

For one identifier, every held event is re-checked against the disk — whatever brought the
objects (a push, a fetch, a copy into another owner's repository) — and each event whose own
objects are present is released at once, independently of the others (S5.4):

* a state (oldest first) is authorised *now* against the store and announcement purgatory
  (S8.2; an author who is no maintainer of any owner is dropped and logged); every owner
  repository whose latest authorised state it is gets the missing objects copied in and its
  ``refs/heads/*``, ``refs/tags/*`` and HEAD aligned exactly; the aligned owners' held
  announcements are promoted (saved and broadcast first, so a subscriber or a syncing peer
  meets the announcement before the state it authorises); then the event is saved,
  subscribers are notified and it leaves purgatory;
* a PR or PR update gets ``refs/nostr/<event-id>`` → its commit in every owner repository
  (objects copied first, from an owner repository or from the PR's GRASP-06 ``/prs/``
  repository, S16.1), then is saved, notified and removed (S8.3).

Saving a released event and dropping its held row are one transaction
(:meth:`PurgatoryStore.save_all_and_unhold`, S9.1): a crash leaves it held or stored, never
neither. A state and the announcements it promotes share that transaction (one commit per
release instead of one per event), so they are released together or stay held together.
Before releasing, the pass cleans up the identifier's expired and out-voted
placeholders (:mod:`grasp.cleanup`, S14.3), so a PR that took over a squatted event id finds
the stale ref gone.

A state released while one of its owner repositories failed to align (another owner's did)
leaves that repository *owed*: the workflow remembers it, :meth:`ReleaseWorkflow.owes` makes the
identifier's sync see pending work, and every later pass aligns it again while the state is
still that owner's latest (``docs/durability.rst`` D9). The memory is the process's own: a
restart before the retry succeeds leaves the repository behind until the owner's next state or
push.

Run only by the single Releaser (S8.1). Releasing is idempotent: a released event is no
longer held, so a second call finds nothing to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grasp.cleanup import PlaceholderCleanup
from grasp.git import align_refs, copy_objects, missing_oids, set_nostr_ref
from grasp.nostr.event import Event
from grasp.nostr.nip34 import PullRequest, RepositoryState, latest_state
from grasp.purgatory import PurgatoryStore
from grasp.repositories import Ownership, RepositoryIndex
from grasp.store.base import EventStore, SaveOutcome
from messages.releaser import ProcessResult

logger = logging.getLogger(__name__)

__all__ = ["ReleaseWorkflow"]

Notify = Callable[[Event], object]
#: The extra repositories a PR's commit may be copied from (GRASP-06 ``/prs/``, S16.1).
PrSources = Callable[[PullRequest], list[Path]]
#: Called once per event that left purgatory by release (states, PRs, promoted announcements)
#: with its identifier and how long it was held (seconds; None if unknown).
OnRelease = Callable[[Event, str, "float | None"], None]


@dataclass
class _Tally:
    states: int = 0
    prs: int = 0
    repos: int = 0
    errors: list[str] = field(default_factory=list)

    def result(self) -> ProcessResult:
        return ProcessResult(self.states, self.prs, self.repos, tuple(self.errors))


class ReleaseWorkflow:
    def __init__(
        self,
        index: RepositoryIndex,
        store: EventStore,
        purgatory: PurgatoryStore,
        notify: Notify | None = None,
        on_release: OnRelease | None = None,
        pr_sources: PrSources | None = None,
        cleanup: PlaceholderCleanup | None = None,
    ) -> None:
        self.index = index
        self.store = store
        self.purgatory = purgatory
        self.notify: Notify = notify or (lambda event: None)
        self.on_release: OnRelease = on_release or (lambda event, identifier, held_for: None)
        #: GRASP-06 (S16.1): more repositories a PR's commit may be read from (its ``/prs/``
        #: repository); they are sources only, refs are written in the owner repositories.
        self.pr_sources: PrSources = pr_sources or (lambda pr: [])
        self.cleanup = cleanup or PlaceholderCleanup(index, purgatory, store)
        #: identifier → owner → the released state that owner's repository still lacks.
        self._owed: dict[str, dict[str, RepositoryState]] = {}

    def owes(self, identifier: str) -> bool:
        """Does an owner repository of ``identifier`` still lack a released state's refs?"""
        return identifier in self._owed

    def process(self, identifier: str) -> ProcessResult:
        """Clean up expired placeholders of ``identifier``, then release every held event of
        it whose objects are on disk now."""
        with self.store.repository_lock(identifier):  # S19.2: one pass cluster-wide
            return self._process(identifier)

    def _process(self, identifier: str) -> ProcessResult:
        tally = _Tally()
        self.purgatory.refresh()  # S19.2: release what any node admitted (under the lock)
        try:
            self.cleanup.run(identifier)
        except Exception as exc:  # cleanup must never stand in the way of a release
            logger.warning("placeholder cleanup of %s failed: %r", identifier, exc)
            tally.errors.append(f"placeholder cleanup: {exc}")
        ownership = self.index.ownership(identifier)  # one read for the whole pass
        owed = dict(self._owed.get(identifier, {}))  # left behind by earlier passes
        for state in self.purgatory.states_for(identifier):
            self._release_state(state, ownership, tally)
        for pr in self.purgatory.prs_for(identifier):
            self._release_pr(pr, ownership, tally)
        if owed:  # after the states: a newer one may have superseded it
            self._align_owed(identifier, owed, ownership, tally)
        if tally.states or tally.prs:
            logger.info(
                "released from purgatory for %s: %d states, %d PRs, %d repositories synced",
                identifier,
                tally.states,
                tally.prs,
                tally.repos,
            )
        return tally.result()

    # -- states (S8.2) ----------------------------------------------------------------------

    def _release_state(self, state: RepositoryState, ownership: Ownership, tally: _Tally) -> None:
        identifier, event = state.identifier, state.event
        repos = ownership.repos
        source = _holder(repos, state.needed_oids)
        if source is None and (state.needed_oids or not repos):
            return  # objects not here yet (or nowhere to put an empty state): keep waiting
        owners = ownership.authorised_owners(state.author)
        if not owners:
            logger.warning(
                "dropping state %s of %s from purgatory: author %s is no maintainer of any owner",
                event.id,
                identifier,
                state.author,
            )
            self.purgatory.remove(event.id)
            return
        aligned: list[str] = []
        failed: list[str] = []
        for owner, path in repos:
            if owner in owners and self._is_latest(state, ownership.maintainers(owner)):
                done = self._align(state, source or path, path, tally)
                (aligned if done else failed).append(owner)
        if failed and not aligned:
            # No repository matches the state (a ref locked by another writer, a failed copy):
            # served now, it would name refs nobody can fetch here. It stays held and the
            # pass reports the error, so the sync is incomplete and retried (S5.3's deviation).
            return
        promoted = [
            held.event
            for owner in aligned
            if (held := self.purgatory.announcement(owner, identifier)) is not None
        ]
        # Announcements first: subscribers (and sync peers) need them before the state they
        # authorise. Stored with the state in one transaction (one commit, not one per event:
        # P1), so a failed save keeps all of them held for the next pass.
        if self._release(identifier, tally, *promoted, event):
            tally.states += 1
            for held_event in promoted:
                logger.info("promoted the announcement of %s for %s", held_event.pubkey, identifier)
            for owner in failed:  # served for the aligned owners; the others are retried
                self._owed.setdefault(identifier, {})[owner] = state

    def _align_owed(
        self,
        identifier: str,
        earlier: dict[str, RepositoryState],
        ownership: Ownership,
        tally: _Tally,
    ) -> None:
        """Align again each owner repository an earlier pass's state left behind, while that
        state is still the owner's latest; a failure is reported like any other, so the sync
        retries. (One this pass left behind waits for the next pass: trying it again at once
        would only fail twice.)"""
        owed = self._owed[identifier]
        paths = dict(ownership.repos)
        for owner, state in earlier.items():
            if owed.get(owner) is not state:
                continue  # this pass left a newer state of that owner owed: the next pass
            path = paths.get(owner)
            if path is None or not self._is_latest(state, ownership.maintainers(owner)):
                del owed[owner]  # gone, or superseded by a newer state (aligned on its own)
                continue
            source = _holder(ownership.repos, state.needed_oids)
            if source is None:
                tally.errors.append(f"{path}: the objects of state {state.event.id} are gone")
            elif self._align(state, source, path, tally):
                logger.info("aligned %s with state %s on retry", path, state.event.id)
                del owed[owner]
        if not owed:
            del self._owed[identifier]

    def _is_latest(self, state: RepositoryState, closure: frozenset[str]) -> bool:
        """Is ``state`` the latest state by the owner's maintainers (created_at, then lowest id)?"""
        stored = self.index.stored_states(state.identifier, authors=closure)
        latest = latest_state([*stored, state])
        return latest is not None and latest.event.id == state.event.id

    def _align(self, state: RepositoryState, source: Path, target: Path, tally: _Tally) -> bool:
        oid_refs = {name: value for name, value in state.refs.items() if value in state.needed_oids}
        try:
            if target != source and state.needed_oids:
                copy_objects(source, target, sorted(state.needed_oids))
            align_refs(target, oid_refs, state.head)
        except Exception as exc:  # one owner's trouble must not block the others
            logger.warning("aligning %s with state %s failed: %s", target, state.event.id, exc)
            tally.errors.append(f"{target}: {exc}")
            return False
        tally.repos += 1
        return True

    # -- PRs (S8.3) -------------------------------------------------------------------------

    def _release_pr(self, pr: PullRequest, ownership: Ownership, tally: _Tally) -> None:
        identifier, repos = ownership.identifier, ownership.repos
        extra = [("", path) for path in self.pr_sources(pr)]
        source = _holder(repos, {pr.commit}) or _holder(extra, {pr.commit})
        if source is None:
            return
        failed = False
        for _, path in repos:
            try:
                if path != source:
                    copy_objects(source, path, [pr.commit])
                set_nostr_ref(path, pr.event_id, pr.commit)
                tally.repos += 1
            except Exception as exc:
                failed = True
                logger.warning("refs/nostr/%s in %s failed: %s", pr.event_id, path, exc)
                tally.errors.append(f"{path}: {exc}")
        if not failed and self._release(identifier, tally, pr.event):
            tally.prs += 1  # otherwise it stays held; the next pass retries

    # -- shared -----------------------------------------------------------------------------

    def _release(self, identifier: str, tally: _Tally, *events: Event) -> bool:
        """Store and announce ``events`` and take them out of purgatory, in one transaction;
        False (they stay held) when the store fails. Purgatory is left only after the save,
        never before, and each event is reported then, in order."""
        held_for = [self.purgatory.held_for(event.id) for event in events]
        try:
            outcomes = self.purgatory.save_all_and_unhold(
                self.store, events, [event.id for event in events]
            )
        except Exception as exc:
            ids = ", ".join(event.id for event in events)
            logger.warning("saving released events %s failed: %s", ids, exc)
            tally.errors.append(f"save {ids}: {exc}")
            return False
        for event, outcome in zip(events, outcomes, strict=True):
            if outcome is SaveOutcome.SAVED:
                self.notify(event)
            else:
                logger.info("released %s without broadcast: %s", event.id, outcome.value)
        # Reported after every broadcast, not between them: the state reaches its subscribers
        # before the promoted announcement's bookkeeping (metrics, status, peers: P1's tail).
        for event, held in zip(events, held_for, strict=True):
            self.on_release(event, identifier, held)
        return True


def _holder(repos: list[tuple[str, Path]], oids: frozenset[str] | set[str]) -> Path | None:
    """The first repository that holds every one of ``oids``."""
    for _, path in repos:
        if not oids or not missing_oids(path, oids):
            return path
    return None
