"""Builders for purgatory tests: a controllable clock and signed NIP-34 events."""

from __future__ import annotations

from grasp.nostr.event import public_key, sign_event
from grasp.nostr.nip34 import Announcement, PullRequest, RepositoryState
from grasp.purgatory import PurgatoryStore

ALICE, BOB, CAROL = "a1" * 32, "b2" * 32, "c3" * 32


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_store(expiry_secs: float = 1800.0) -> tuple[PurgatoryStore, FakeClock, FakeClock]:
    now, wall = FakeClock(1000.0), FakeClock(1_800_000_000.0)
    return PurgatoryStore(now=now, wall=wall, expiry_secs=expiry_secs), now, wall


def oid(n: int) -> str:
    return f"{n:040x}"


def state(
    secret: str, identifier: str, refs: dict[str, str], created_at: int = 100
) -> RepositoryState:
    tags = [["d", identifier], *([name, value] for name, value in refs.items())]
    return RepositoryState.from_event(sign_event(secret, 30618, tags, "", created_at=created_at))


def pr(
    secret: str,
    identifiers: list[str],
    commit: str,
    clone: tuple[str, ...] = (),
    kind: int = 1618,
    owner: str = ALICE,
    created_at: int = 100,
) -> PullRequest:
    tags = [["a", f"30617:{public_key(owner)}:{d}"] for d in identifiers]
    tags += [["c", commit]] + ([["clone", *clone]] if clone else [])
    return PullRequest.from_event(sign_event(secret, kind, tags, "", created_at=created_at))


def announcement(
    secret: str, identifier: str, created_at: int = 100, clone: tuple[str, ...] = ()
) -> Announcement:
    tags = [["d", identifier]] + ([["clone", *clone]] if clone else [])
    return Announcement.from_event(sign_event(secret, 30617, tags, "", created_at=created_at))
