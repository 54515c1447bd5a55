"""A relay's data layer without the relay (store, purgatory, repositories, release, context):
the ``world`` fixture, re-exported by the conftest of every test package that needs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from actors.clock import FakeClock
from grasp.context import RealSyncContext
from grasp.git import FetchLimits, FetchPolicy, ensure_bare_repo
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import Event
from grasp.nostr.nip34 import Announcement, PullRequest, RepositoryState
from grasp.purgatory import PurgatoryStore
from grasp.release import ReleaseWorkflow
from grasp.repositories import RepositoryIndex
from grasp.store.sqlite import EventStore
from tests.support.nip34 import Key


@dataclass
class World:
    data_dir: Path
    clock: FakeClock
    store: EventStore
    purgatory: PurgatoryStore
    index: RepositoryIndex
    workflow: ReleaseWorkflow
    ctx: RealSyncContext
    notified: list[Event] = field(default_factory=list)

    def repo(self, owner: Key, identifier: str) -> Path:
        """The owner's bare repository on this relay (created on first use)."""
        return ensure_bare_repo(self.data_dir, npub_encode(owner.pubkey), identifier)

    def announce(self, owner: Key, identifier: str, held: bool = False, **kwargs) -> Announcement:
        """Store the announcement (or hold it in announcement purgatory) and create the repo."""
        announcement = Announcement.from_event(owner.announcement(identifier, **kwargs))
        if held:
            self.purgatory.add_announcement(announcement)
        else:
            self.store.save(announcement.event)
        self.repo(owner, identifier)
        return announcement

    def hold_state(self, event: Event) -> RepositoryState:
        state = RepositoryState.from_event(event)
        self.purgatory.add_state(state)
        return state

    def hold_pr(self, event: Event) -> PullRequest:
        pr = PullRequest.from_event(event)
        self.purgatory.add_pr(pr)
        return pr

    @property
    def notified_ids(self) -> list[str]:
        return [e.id for e in self.notified]


@pytest.fixture
def world(tmp_path):
    clock = FakeClock(start=5000.0)
    store = EventStore(tmp_path / "events.sqlite3")
    purgatory = PurgatoryStore(now=clock.now, db=store)  # written through, as in the relay
    index = RepositoryIndex(store, purgatory, tmp_path)
    notified: list[Event] = []
    workflow = ReleaseWorkflow(index, store, purgatory, notify=notified.append)
    ctx = RealSyncContext(
        index,
        purgatory,
        workflow,
        domain="relay.invalid",
        policy=FetchPolicy(allow_private=True),
        limits=FetchLimits(deadline_secs=20, read_timeout_secs=5),
    )
    yield World(tmp_path, clock, store, purgatory, index, workflow, ctx, notified)
    store.close()
