"""The held entries of purgatory and the NIP-01 answers that go with holding (S1.2, S1.4)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from grasp.nostr.nip34 import Announcement, PullRequest, RepositoryState
from grasp.nostr.results import Prefix, Result

HELD_RESULT = Result.ok(Prefix.PURGATORY, "won't be served until git data arrives")
DUPLICATE_RESULT = Result.ok(Prefix.DUPLICATE, "in purgatory")
EXPIRED_RESULT = Result.reject(Prefix.INVALID, "previously expired from purgatory without git data")


class Source(str, Enum):
    """Where a held event came from: a user (expects a push soon) or a sync source (S4.2)."""

    DIRECT = "direct"
    SYNC = "sync"


class AddOutcome(Enum):
    ADDED = "added"
    #: The same event id is already held.
    DUPLICATE = "duplicate"
    #: It took the place of an older entry (a PR placeholder, or an older announcement version).
    REPLACED = "replaced"
    #: A newer announcement of the same (owner, d) is already held; nothing changed.
    STALE = "stale"

    @property
    def held(self) -> bool:
        return self in (AddOutcome.ADDED, AddOutcome.REPLACED)


@dataclass(slots=True)
class HeldState:
    state: RepositoryState
    source: Source
    expires_at: float

    @property
    def event_id(self) -> str:
        return self.state.event.id


@dataclass(slots=True)
class HeldPr:
    """A held PR or PR update (1618/1619), keyed by event id (S1.3)."""

    event_id: str
    commit: str
    pr: PullRequest
    source: Source
    expires_at: float


@dataclass(slots=True)
class HeldPlaceholder:
    """A push to ``refs/nostr/<event_id>`` of one repository that came before its PR event
    (S1.3). ``owner`` and ``identifier`` name the repository; both are ``""`` for a
    placeholder imported from a version-1 state file, which did not record it."""

    event_id: str
    commit: str
    owner: str
    identifier: str
    expires_at: float

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.event_id, self.owner, self.identifier)


@dataclass(slots=True)
class HeldAnnouncement:
    announcement: Announcement
    source: Source
    expires_at: float


@dataclass(frozen=True)
class SweepResult:
    """What one expiry sweep removed (the caller logs, counts and cleans up refs/repos)."""

    states: tuple[RepositoryState, ...] = ()
    prs: tuple[PullRequest, ...] = ()
    placeholders: tuple[str, ...] = ()
    announcements: tuple[Announcement, ...] = ()

    @property
    def expired_ids(self) -> list[str]:
        """Event ids now remembered as expired (placeholders are not events)."""
        return [
            *(s.event.id for s in self.states),
            *(p.event.id for p in self.prs),
            *(a.event.id for a in self.announcements),
        ]

    @property
    def total(self) -> int:
        return len(self.states) + len(self.prs) + len(self.placeholders) + len(self.announcements)

    def __bool__(self) -> bool:
        return self.total > 0
