"""Who owns an identifier and where their repositories are: the store plus announcement purgatory.

Every question of the release workflow and of sync URL gathering about an identifier —
which announcements exist, who may publish states for whom, which bare repositories are on
disk — is answered here, always from *both* the event store and announcement purgatory (the
original deadlocked new repositories by reading the store alone; upstream-behaviour §2.1).
"""

from __future__ import annotations

import logging
from pathlib import Path

from grasp.git import repo_path_for
from grasp.nostr import kinds
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.filters import Filter
from grasp.nostr.nip34 import (
    Announcement,
    Nip34Error,
    RepositoryState,
    announcement_lookup,
    authorizing_owners,
    maintainer_set,
)
from grasp.purgatory import PurgatoryStore
from grasp.store.base import EventStore

logger = logging.getLogger(__name__)

__all__ = ["Ownership", "RepositoryIndex"]


class Ownership:
    """One read of who owns an identifier: its announcements (store, then announcement
    purgatory), each owner's recursive maintainer set, and the owner repositories on disk.

    A release pass takes one and asks it everything, instead of querying the store again for
    every event and every owner.
    """

    def __init__(
        self, identifier: str, announcements: list[Announcement], repos: list[tuple[str, Path]]
    ):
        self.identifier = identifier
        self.announcements = announcements
        self.repos = repos
        self._lookup = announcement_lookup(announcements)
        self._maintainers: dict[str, frozenset[str]] = {}

    @property
    def owners(self) -> list[str]:
        """Announcement authors in announcement order, each once."""
        return list(dict.fromkeys(a.owner for a in self.announcements))

    def maintainers(self, owner: str) -> frozenset[str]:
        """The recursive maintainer set of ``owner`` (S10.3)."""
        if owner not in self._maintainers:
            self._maintainers[owner] = maintainer_set(owner, self.identifier, self._lookup)
        return self._maintainers[owner]

    def authorised_owners(self, author: str) -> list[str]:
        """The owners whose maintainer set contains ``author``, in announcement order."""
        return authorizing_owners(author, self.identifier, self.owners, self._lookup)


class RepositoryIndex:
    def __init__(self, store: EventStore, purgatory: PurgatoryStore, data_dir: Path) -> None:
        self.store = store
        self.purgatory = purgatory
        self.data_dir = Path(data_dir)

    def announcements(self, identifier: str) -> list[Announcement]:
        """Every announcement of ``identifier``, any owner: stored ones oldest first (created_at,
        then id), then held ones in arrival order; one per event id (S3.1 order)."""
        stored = self.store.query(
            [
                Filter(
                    kinds=frozenset({kinds.REPO_ANNOUNCEMENT}), tags={"d": frozenset({identifier})}
                )
            ]
        )
        stored.sort(key=lambda e: (e.created_at, e.id))
        found: dict[str, Announcement] = {}
        for event in stored:
            try:
                found[event.id] = Announcement.from_event(event)
            except Nip34Error as exc:
                logger.debug("ignoring stored announcement %s: %s", event.id, exc)
        for announcement in self.purgatory.announcements_for(identifier):
            found.setdefault(announcement.event.id, announcement)
        return list(found.values())

    def ownership(self, identifier: str) -> Ownership:
        announcements = self.announcements(identifier)
        repos = []
        for owner in dict.fromkeys(a.owner for a in announcements):
            path = self.repo_path(owner, identifier)
            if path.is_dir():
                repos.append((owner, path))
        return Ownership(identifier, announcements, repos)

    def maintainers(self, owner: str, identifier: str) -> frozenset[str]:
        """The recursive maintainer set of ``owner`` (S10.3), counting held announcements."""
        return self.ownership(identifier).maintainers(owner)

    def authorised_owners(self, author: str, identifier: str) -> list[str]:
        """The owners whose maintainer set contains ``author``, in announcement order."""
        return self.ownership(identifier).authorised_owners(author)

    def repo_path(self, owner: str, identifier: str) -> Path:
        return repo_path_for(self.data_dir, npub_encode(owner), identifier)

    def stored_states(
        self, identifier: str, authors: frozenset[str] | None = None
    ) -> list[RepositoryState]:
        """Stored state events of ``identifier`` (optionally only by ``authors``)."""
        flt = Filter(
            kinds=frozenset({kinds.REPO_STATE}),
            authors=authors,
            tags={"d": frozenset({identifier})},
        )
        states = []
        for event in self.store.query([flt]):
            try:
                states.append(RepositoryState.from_event(event))
            except Nip34Error as exc:
                logger.debug("ignoring stored state %s: %s", event.id, exc)
        return states
