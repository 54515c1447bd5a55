"""The seed's integration tests (Phase 10) against real ``grasp-relay`` processes.

Relay A is the source: a user announces a repository there, publishes a state (and PRs) and
pushes the git data, so A serves them. Relay B syncs from A (``--sync-source``, S10.7): the
events arrive as *synced*, are held because B has no git data (S1.2), wait the short synced delay
(S4.2), and B fetches the objects from A's clone URL — its own URL is excluded (S3.2) — in one
request per URL (S7.1), then releases them (S8.2, S8.3). Nothing is mocked: the relays are
separate processes, git is ``git http-backend`` and the ``git`` CLI, the client is nostr-sdk.

Request counts (see :mod:`tests.integration.remotes`): one fetch exchange with a relay is
``GET info/refs`` plus two upload-pack POSTs (``ls-refs`` and ``fetch``, protocol v2).
"""

from __future__ import annotations

import re

import pytest

from tests.integration.remotes import GitRequests
from tests.integration.support import E2ERelay, announcement_listing, planned_domain, push
from tests.support.gitrepo import RepoBuilder, assert_fsck_clean
from tests.support.nip34 import Key

pytestmark = pytest.mark.slow

ONE_FETCH = GitRequests(adverts=1, posts=2)  # one v2 fetch exchange, as a relay's access log shows it


def assert_log_in_order(relay: E2ERelay, *patterns: str) -> None:
    """Each pattern matches a log line after the line the previous one matched."""
    lines = relay.log.splitlines()
    position = 0
    for pattern in patterns:
        regex = re.compile(pattern)
        found = next((i for i in range(position, len(lines)) if regex.search(lines[i])), None)
        assert found is not None, f"{relay.name}'s log has no {pattern!r} after line {position}\n{relay.log_tail()}"
        position = found + 1


def fetch_lines(relay: E2ERelay, text: str) -> list[str]:
    """The sync and fetch log lines (actors.sync, grasp.git) that mention ``text``."""
    return [line for line in relay.log.splitlines()
            if text in line and (" actors.sync " in line or " grasp.git." in line)]


def released_on_source(source: E2ERelay, owner: Key, identifier: str, local: RepoBuilder,
                       refs: dict[str, str], domains: list[str]):
    """A user's repository on ``source``: announcement + state published (both held), then
    pushed, so the source releases and serves them. Returns (announcement, state)."""
    announcement = announcement_listing(owner, identifier, domains)
    state = owner.state(identifier, refs)
    source.publish(announcement, state)
    source.wait_held(k30617=1, k30618=1)
    push(local.path, source.clone_url(owner.pubkey, identifier), *(f"{ref}:{ref}" for ref in refs))
    source.wait_served(announcement, state)
    return announcement, state


def test_state_event_syncs_from_remote(cluster, tmp_path):
    """S10.7 → S1.2 → S4.2 → S3.1/S3.2 → S7.1 → S8.2: B learns the state from A, holds it,
    fetches its objects from A's clone URL in one exchange and releases it with aligned refs."""
    owner, identifier = Key(), "state-sync"
    local = RepoBuilder.create(tmp_path / "local.git")
    main = local.chain(3, branch="main")[-1]
    a = cluster.relay("A")
    announcement, state = released_on_source(
        a, owner, identifier, local, {"refs/heads/main": main}, [a.domain, planned_domain("B")])

    b = cluster.relay("B", fixed_domain=True, sync_from=[a])
    b.wait_served(state, announcement)  # the announcement is promoted with the release

    assert b.ls_remote(owner.pubkey, identifier) == {"HEAD": main, "refs/heads/main": main}
    assert_fsck_clean(b.repo_path(owner.pubkey, identifier))
    assert sum(b.held().values()) == 0
    assert_log_in_order(
        b,
        rf"state {state.id} of {identifier} held in purgatory",
        rf"{identifier}: fetched 1 OIDs from {re.escape(a.clone_url(owner.pubkey, identifier))}",
        rf"released from purgatory for {identifier}: 1 states",
    )
    assert not fetch_lines(b, planned_domain("B")), "B fetched from its own clone URL (S3.2)"
    assert a.git_requests() == ONE_FETCH
