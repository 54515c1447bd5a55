"""Signed NIP-34 events for tests: a key per role, events built with the real signer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from grasp.nostr import kinds
from grasp.nostr.event import Event, generate_secret_key, public_key, sign_event


@dataclass
class Key:
    """A Nostr identity for tests."""

    secret: str = field(default_factory=generate_secret_key)

    @property
    def pubkey(self) -> str:
        return public_key(self.secret)

    def announcement(
        self,
        identifier: str,
        clone: Sequence[str] = (),
        relays: Sequence[str] = (),
        maintainers: Sequence[str] = (),
        created_at: int = 1_700_000_000,
    ) -> Event:
        tags: list[list[str]] = [["d", identifier], ["name", identifier]]
        if clone:
            tags.append(["clone", *clone])
        if relays:
            tags.append(["relays", *relays])
        if maintainers:
            tags.append(["maintainers", *maintainers])
        return sign_event(self.secret, kinds.REPO_ANNOUNCEMENT, tags, "", created_at)

    def state(
        self,
        identifier: str,
        refs: Mapping[str, str],
        head: str | None = "refs/heads/main",
        created_at: int = 1_700_000_100,
    ) -> Event:
        tags: list[list[str]] = [["d", identifier]]
        tags += [[name, value] for name, value in refs.items()]
        if head:
            tags.append(["HEAD", f"ref: {head}"])
        return sign_event(self.secret, kinds.REPO_STATE, tags, "", created_at)

    def pr(
        self,
        owner: str,
        identifier: str,
        commit: str,
        clone: Sequence[str] = (),
        kind: int = kinds.PULL_REQUEST,
        created_at: int = 1_700_000_200,
    ) -> Event:
        tags = [["a", f"{kinds.REPO_ANNOUNCEMENT}:{owner}:{identifier}"], ["c", commit]]
        if clone:
            tags.append(["clone", *clone])
        if kind == kinds.PULL_REQUEST:
            tags.append(["subject", "a pull request"])
        return sign_event(self.secret, kind, tags, "please pull", created_at)
