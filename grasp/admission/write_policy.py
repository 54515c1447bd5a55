"""The GRASP-01 write policy (S10.4): what the relay keeps, holds in purgatory, or refuses.

The checks are the pure rules of ``grasp.admission.rules``; this class gathers the facts they need
and performs the effects: saving and broadcasting, creating bare repositories, holding events
in purgatory and asking the actor system to sync or release. Writes of refs and of released
events always go through the Releaser (single writer, S8.1) — when an event arrives whose
objects are already on disk, the policy asks the Releaser and waits, so the client's ``OK``
tells the truth ("stored" or "purgatory").

Held events are committed to the event database by the purgatory store before this policy
returns, so an ``OK true "purgatory: ..."`` is only ever sent for a row that survives any stop
(S9.1). ``error:`` is reserved for the relay's own faults; bad input is answered ``invalid:``
before it can reach the repository layer (S14.2), and a fault is logged once per distinct kind
per minute, not once per event (:mod:`grasp.admission.faults`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from grasp.admission import rules
from grasp.admission.archive import Archive
from grasp.admission.contributor_prs import ContributorPrs, check_submission, is_submission
from grasp.admission.curation import Curation
from grasp.admission.faults import FaultLimiter, fault_key
from grasp.admission.intake import EventSource
from grasp.git import create_bare_repo, missing_oids
from grasp.nostr import kinds
from grasp.nostr.address import Address, DeletionRequest
from grasp.nostr.event import Event
from grasp.nostr.filters import Filter
from grasp.nostr.nip34 import Announcement, Nip34Error, PullRequest, RepositoryState
from grasp.nostr.results import Prefix, Result
from grasp.purgatory import (
    DUPLICATE_RESULT,
    HELD_RESULT,
    AddOutcome,
    PurgatoryStore,
    Source,
)
from grasp.repositories import RepositoryIndex
from grasp.store.base import EventStore, SaveOutcome
from messages.releaser import ProcessResult
from messages.scheduler import SyncReason

logger = logging.getLogger(__name__)

__all__ = ["GraspWritePolicy", "SyncPort"]

STORED_ALREADY = Result.ok(Prefix.DUPLICATE, "already have this event")
NEWER_EXISTS = Result.ok(Prefix.DUPLICATE, "have a newer version of this event")


class SyncPort(Protocol):
    """What the policy asks of purgatory sync (``actors.system.SyncSystem`` offers it)."""

    def enqueue_sync(self, identifier: str, reason: SyncReason = "user") -> None: ...

    def git_data_arrived(self, identifier: str) -> None: ...

    def release_now(self, identifier: str, timeout: float = 60.0) -> ProcessResult: ...


class GraspWritePolicy:
    def __init__(
        self,
        *,
        domain: str,
        index: RepositoryIndex,
        store: EventStore,
        purgatory: PurgatoryStore,
        sync: SyncPort,
        notify: Callable[[Event], object],
        curation: Curation = Curation(),
        archive: Archive | None = None,
        prs: ContributorPrs | None = None,
        public_scheme: str = "http",
        fetch_candidates: Callable[[str], Sequence[str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        create_repo: Callable[[Path], Path] = create_bare_repo,
    ) -> None:
        """``public_scheme`` is how clients reach us (refusal advice, S10.4);
        ``fetch_candidates`` lists the URLs purgatory sync would try for an identifier (the
        held PR's answer says how many, S1.2); without it the answer says a push is awaited.
        ``create_repo`` makes an announced repository's empty bare repository (the relay
        passes :meth:`grasp.git.repo_pool.EmptyRepoPool.create`: one rename, P7)."""
        self.domain = domain
        self.public_scheme = public_scheme
        self.fetch_candidates = fetch_candidates
        self.index = index
        self.store = store
        self.purgatory = purgatory
        self.sync = sync
        self.notify = notify
        self.curation = curation
        #: GRASP-05 (S17.5): announcements accepted without listing us, read-only here.
        self.archive = archive or Archive()
        #: GRASP-06 (S16.1); None when ``--no-grasp06``: ``/prs/`` URLs then mean nothing here.
        self.prs = prs
        self.clock = clock
        self.create_repo = create_repo
        self.faults = FaultLimiter()

    def __call__(self, event: Event, source: EventSource) -> Result:
        refusal = self.curation.check_author(event.pubkey)
        if refusal:
            return refusal
        handler = {
            kinds.REPO_ANNOUNCEMENT: self._announcement,
            kinds.REPO_STATE: self._state,
            kinds.PULL_REQUEST: self._pr,
            kinds.PULL_REQUEST_UPDATE: self._pr,
        }.get(event.kind, self._related)
        try:
            self.purgatory.refresh()  # S19.2: judged against what any node holds
            result = handler(event, source is EventSource.SYNC)
        except Nip34Error as exc:
            return Result(False, exc.message)
        except Exception as exc:
            self._fault(event, exc)
            return Result.reject(Prefix.ERROR, "could not process the event")
        if result.accepted:
            self._remember_references(event)
        return result

    def _remember_references(self, event: Event) -> None:
        """S15.1: what an accepted event names becomes acceptable when it arrives later."""
        try:
            self.store.add_references(event.id, rules.reference_keys(event))
        except Exception:  # the event is accepted; a missed index entry only costs a refusal
            logger.exception("could not record the references of event %s", event.id)

    def _fault(self, event: Event, exc: Exception) -> None:
        """S14.2: one line with a traceback per distinct fault and minute, never per event."""
        suppressed = self.faults.admit(fault_key(exc), self.clock())
        if suppressed is None:
            logger.debug("write policy failed again on event %s: %r", event.id, exc)
            return
        also = f" ({suppressed} more since it was last logged)" if suppressed else ""
        logger.error(
            "write policy failed on event %s (kind %d)%s", event.id, event.kind, also, exc_info=exc
        )

    # -- 30617 ------------------------------------------------------------------------------

    def _announcement(self, event: Event, synced: bool) -> Result:
        announcement = Announcement.from_event(event)
        curated = self.curation.check_repository(announcement.owner, announcement.identifier)
        if curated:
            return curated  # S15.5, GRASP-01 L11
        # S17.5: an archived repository is hosted like one listing us (held until its git
        # data arrives from its own clone URLs), without the GRASP-01 listing rule.
        ours = rules.lists_this_service(announcement, self.domain) or self.archive.archives(
            announcement, self.domain
        )
        refusal = rules.check_announcement(
            announcement,
            self.domain,
            ours or self._is_maintainer(announcement),
            self.public_scheme,
        )
        if refusal:
            return refusal
        if not ours or self._stored_announcement(announcement):
            result = self._save(event)  # a maintainer's, or a replacement of an accepted one
            if ours:
                self.create_repo(self.index.repo_path(announcement.owner, announcement.identifier))
        else:
            # GRASP-01 :34: the empty repository exists before the OK (protocol.md §4.4)
            self.create_repo(self.index.repo_path(announcement.owner, announcement.identifier))
            outcome = self.purgatory.add_announcement(announcement, _source(synced))
            result = {AddOutcome.DUPLICATE: DUPLICATE_RESULT, AddOutcome.STALE: NEWER_EXISTS}.get(
                outcome, HELD_RESULT
            )
        if self.purgatory.has_pending_events(announcement.identifier):
            self.sync.git_data_arrived(announcement.identifier)  # it may authorise waiting states
        return result

    def _archive_only(self, announcements: Sequence[Announcement]) -> bool:
        """S17.5: every announcement of the identifier is archived here (none lists us)."""
        return bool(announcements) and all(
            self.archive.archives(a, self.domain) for a in announcements
        )

    def _is_maintainer(self, announcement: Announcement) -> bool:
        """Is the author in some other owner's recursive maintainer set for this identifier?"""
        owners = self.index.authorised_owners(announcement.owner, announcement.identifier)
        return any(owner != announcement.owner for owner in owners)

    def _stored_announcement(self, announcement: Announcement) -> bool:
        flt = Filter(
            kinds=frozenset({kinds.REPO_ANNOUNCEMENT}),
            authors=frozenset({announcement.owner}),
            tags={"d": frozenset({announcement.identifier})},
        )
        return bool(self.store.query([flt]))

    # -- 30618 ------------------------------------------------------------------------------

    def _state(self, event: Event, synced: bool) -> Result:
        state = RepositoryState.from_event(event)
        if self.purgatory.contains(event.id):
            self._enqueue(state.identifier, synced)
            return DUPLICATE_RESULT
        if self.store.contains(event.id):
            return STORED_ALREADY
        refusal = rules.check_sha1_oids(state.needed_oids)
        if refusal:
            return refusal
        ownership = self.index.ownership(state.identifier)
        owners = ownership.authorised_owners(state.author)
        refusal = rules.check_repository_author(ownership.announcements, owners)
        if refusal:
            return refusal
        if _on_disk(ownership.repos, state.needed_oids):
            self.purgatory.add_state(state, _source(synced), extend_owners=owners)
            return self._release_now(event, state.identifier, synced, HELD_RESULT)
        refusal = rules.check_not_expired(event, synced, self.purgatory.is_expired(event.id))
        if refusal:
            for owner in owners:  # an authorised state for them still arrived
                self.purgatory.extend_announcement(owner, state.identifier)
            return refusal
        # the held row and the announcements' new expiry: one transaction, before the OK
        self.purgatory.add_state(state, _source(synced), extend_owners=owners)
        logger.info("state %s of %s held in purgatory", event.id, state.identifier)
        # S17.5: no push can follow a state of an archive, so its sync need not wait for one
        self._enqueue(state.identifier, synced or self._archive_only(ownership.announcements))
        return HELD_RESULT

    # -- 1618 / 1619 ------------------------------------------------------------------------

    def _pr(self, event: Event, synced: bool) -> Result:
        pr = PullRequest.from_event(event)
        if self.purgatory.contains(event.id):
            self._enqueue(pr.identifier, synced)
            return DUPLICATE_RESULT
        if self.store.contains(event.id):
            return STORED_ALREADY
        ownership = self.index.ownership(pr.identifier)
        submitted = self._contributor_pr(pr)
        if isinstance(submitted, Result):
            return submitted
        if not submitted and not any(a.owner in pr.owners for a in ownership.announcements):
            return Result.reject(
                Prefix.INVALID, "pull request does not reference a repository on this relay"
            )
        refusal = rules.check_sha1_oids({pr.commit})
        refusal = refusal or rules.check_not_expired(
            event, synced, self.purgatory.is_expired(event.id)
        )
        if refusal:
            return refusal
        squatted = self.purgatory.placeholder_commit(event.id) not in (None, pr.commit)
        self.purgatory.add_pr(pr, _source(synced))
        held = rules.pr_held_result(pr.commit, self._fetch_urls(pr.identifier))
        sources = [("", path) for path in self.prs.sources(pr)] if self.prs else []
        if _on_disk([*ownership.repos, *sources], {pr.commit}):
            return self._release_now(event, pr.identifier, synced, held)
        if squatted:  # S14.3: the signed event wins; the Releaser deletes the stale ref
            logger.info("PR %s replaces a placeholder of another commit", event.id)
            self.sync.git_data_arrived(pr.identifier)
        logger.info(
            "PR %s of %s held in purgatory, waiting for %s", event.id, pr.identifier, pr.commit
        )
        self._enqueue(pr.identifier, synced)
        return held

    def _contributor_pr(self, pr: PullRequest) -> bool | Result:
        """GRASP-06 (S16.1): True for a valid ``/prs/`` submission (accepted without an
        announcement; a pushed tip that is not its ``c`` loses its ref), a refusal for a
        ``/prs/`` URL that contradicts the event, False otherwise."""
        if self.prs is None:
            return False
        refusal = check_submission(pr, self.domain)
        if refusal:
            return refusal
        if not is_submission(pr, self.domain):
            return False
        self.prs.reconcile(pr)
        return True

    # -- related kinds and deletions --------------------------------------------------------

    def _related(self, event: Event, synced: bool) -> Result:
        """S15.1, GRASP-01 L13: any other kind is kept when it tags an accepted announcement or
        event, or when an accepted event tagged it (the referenced-ids index). A deletion may
        also name held events: it unholds them (S15.4)."""
        deletion = event.kind == kinds.DELETION
        found = (
            self._references_accepted(event, include_held=deletion)
            or self.store.referrer_of(rules.own_keys(event)) is not None
            or (event.kind == kinds.USER_GRASP_LIST and self._hosts_repository_of(event.pubkey))
        )
        refusal = rules.check_related(found, event)
        if refusal:
            return refusal
        if not deletion:
            return self._save(event)
        # the deletion and the held events it removes leave together (one transaction)
        removed = self.purgatory.deleted_by(DeletionRequest.from_event(event))
        outcome = self.purgatory.save_and_unhold(self.store, event, removed)
        if outcome.stored:
            self.notify(event)
        if removed:
            logger.info("deletion %s removed %d held events", event.id, len(removed))
        return outcome.to_result()

    def _references_accepted(self, event: Event, include_held: bool) -> bool:
        for address in rules.referenced_addresses(event):
            if self.store.query([_address_filter(address)]):
                return True
            if include_held and self._holds_address(address):
                return True
        ids = rules.referenced_ids(event)
        return any(
            self.store.contains(i) or (include_held and self.purgatory.contains(i)) for i in ids
        )

    def _holds_address(self, address: Address) -> bool:
        """Is an announcement or a state with this coordinate held in purgatory?"""
        if address.kind == kinds.REPO_ANNOUNCEMENT:
            return self.purgatory.announcement(address.pubkey, address.d) is not None
        if address.kind == kinds.REPO_STATE:
            return any(s.author == address.pubkey for s in self.purgatory.states_for(address.d))
        return False

    def _hosts_repository_of(self, pubkey: str) -> bool:
        """A user grasp list (10317) is kept for authors with an accepted announcement here."""
        flt = Filter(kinds=frozenset({kinds.REPO_ANNOUNCEMENT}), authors=frozenset({pubkey}))
        return bool(self.store.query([flt], limit_cap=1))

    # -- shared -----------------------------------------------------------------------------

    def _save(self, event: Event) -> Result:
        outcome = self.store.save(event)
        if outcome.stored or outcome is SaveOutcome.EPHEMERAL:
            self.notify(event)  # ephemeral kinds are relayed live, never stored (NIP-01)
        return outcome.to_result()

    def _release_now(self, event: Event, identifier: str, synced: bool, held: Result) -> Result:
        """The objects are here: let the Releaser release it now and answer what happened.

        A Releaser that is slow (a large copy) or restarting is no reason to fail the client:
        the event is held either way, and the queued sync releases it later.
        """
        try:
            self.sync.release_now(identifier)
        except Exception as exc:
            logger.warning(
                "releasing %s for event %s did not finish: %r", identifier, event.id, exc
            )
        if self.store.contains(event.id):
            return Result.ok()
        if self.purgatory.contains(event.id):
            self._enqueue(identifier, synced)
            return held
        return NEWER_EXISTS

    def _fetch_urls(self, identifier: str) -> int:
        """How many URLs purgatory sync would fetch ``identifier``'s objects from (S3)."""
        return len(self.fetch_candidates(identifier)) if self.fetch_candidates else 0

    def _enqueue(self, identifier: str, synced: bool) -> None:
        """S4.2: the sync config turns the origin into a delay."""
        self.sync.enqueue_sync(identifier, "synced" if synced else "user")


def _address_filter(address: Address) -> Filter:
    """The stored events with this coordinate (a replaceable kind has no ``d`` tag)."""
    tags = {"d": frozenset({address.d})} if kinds.is_addressable(address.kind) else {}
    return Filter(
        kinds=frozenset({address.kind}), authors=frozenset({address.pubkey}), tags=tags, limit=1
    )


def _on_disk(repos: list[tuple[str, Path]], oids: frozenset[str] | set[str]) -> bool:
    """Does some owner repository already hold every one of ``oids``?"""
    return any(not missing_oids(path, oids) for _, path in repos)


def _source(synced: bool) -> Source:
    return Source.SYNC if synced else Source.DIRECT
