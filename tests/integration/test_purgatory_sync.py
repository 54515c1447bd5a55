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
from tests.integration.support import (
    announcement_listing,
    assert_log_in_order,
    clone_url_at,
    fetch_lines,
    planned_domain,
    push,
    released_on_source,
)
from tests.support.gitrepo import RepoBuilder, assert_fsck_clean
from tests.support.nip34 import Key

pytestmark = pytest.mark.slow

# one v2 fetch exchange as a relay's access log shows it: info/refs and the fetch POST (no
# ls-refs for fixed wants, P6 of issue 16)
ONE_FETCH = GitRequests(adverts=1, posts=1)


def test_state_event_syncs_from_remote(cluster, tmp_path):
    """S10.7 → S1.2 → S4.2 → S3.1/S3.2 → S7.1 → S8.2: B learns the state from A, holds it,
    fetches its objects from A's clone URL in one exchange and releases it with aligned refs."""
    owner, identifier = Key(), "state-sync"
    local = RepoBuilder.create(tmp_path / "local.git")
    main = local.chain(3, branch="main")[-1]
    a = cluster.relay("A")
    announcement = announcement_listing(owner, identifier, [a.domain, planned_domain("B")])
    state = owner.state(identifier, {"refs/heads/main": main})
    released_on_source(a, announcement, state, local.path)

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


def test_pr_event_syncs_from_remote(cluster, tmp_path):
    """S2.2 → S1.2 → S7.1 → S8.3: a PR served by A (its commit pushed to refs/nostr/<id>)
    reaches B by sync, is held for its commit, and B fetches the state's and the PR's objects
    in the same exchange, then creates refs/nostr/<id> and serves the PR."""
    owner, contributor, identifier = Key(), Key(), "pr-sync"
    local = RepoBuilder.create(tmp_path / "local.git")
    main = local.chain(2, branch="main")[-1]
    tip = local.commit("the contribution", parents=[main])  # not on any branch
    a = cluster.relay("A")
    announcement = announcement_listing(owner, identifier, [a.domain, planned_domain("B")])
    state = owner.state(identifier, {"refs/heads/main": main})
    released_on_source(a, announcement, state, local.path)
    pr = contributor.pr(owner.pubkey, identifier, tip)
    a.publish(pr)
    a.wait_held(k1618=1)
    push(local.path, a.clone_url(owner.pubkey, identifier), f"{tip}:refs/nostr/{pr.id}")
    a.wait_served(pr)

    b = cluster.relay("B", fixed_domain=True, sync_from=[a])
    b.wait_served(announcement, state, pr)

    assert b.ls_remote(owner.pubkey, identifier) == {
        "HEAD": main,
        "refs/heads/main": main,
        f"refs/nostr/{pr.id}": tip,
    }
    assert_fsck_clean(b.repo_path(owner.pubkey, identifier))
    assert_log_in_order(
        b,
        rf"PR {pr.id} of {identifier} held in purgatory, waiting for {tip}",
        rf"{identifier}: fetched 2 OIDs from ",
        rf"released from purgatory for {identifier}: 1 states, 1 PRs",
    )
    assert a.git_requests() == ONE_FETCH


def test_concurrent_state_and_pr_sync(cluster, tmp_path):
    """S4.3, S5.4: a new state and a PR reach B together, from two sides at once — a user
    publishes both to B concurrently (held, 180 s user delay) while A releases them and its
    live feed re-delivers them as synced (the sooner attempt wins, S4.1). B keeps one queue
    entry, fetches both commits in one exchange and releases both."""
    owner, contributor, identifier = Key(), Key(), "concurrent"
    local = RepoBuilder.create(tmp_path / "local.git")
    first = local.chain(1, branch="main")[-1]
    a = cluster.relay("A")
    announcement = announcement_listing(owner, identifier, [a.domain, planned_domain("B")])
    old_state = owner.state(identifier, {"refs/heads/main": first})
    released_on_source(a, announcement, old_state, local.path)
    b = cluster.relay("B", fixed_domain=True, sync_from=[a])
    b.wait_served(announcement, old_state)

    second = local.chain(1, parent=first, branch="main")[-1]
    tip = local.commit("the contribution", parents=[second])
    state = owner.state(identifier, {"refs/heads/main": second}, created_at=1_700_000_500)
    pr = contributor.pr(owner.pubkey, identifier, tip)
    b.publish(state, pr, concurrently=True)
    b.wait_held(k30618=1, k1618=1)
    a.publish(state, pr, concurrently=True)
    push(
        local.path,
        a.clone_url(owner.pubkey, identifier),
        "refs/heads/main:refs/heads/main",
        f"{tip}:refs/nostr/{pr.id}",
    )
    a.wait_served(state, pr)

    b.wait_served(state, pr, timeout=5.0)  # far sooner than B's 180 s user delay
    assert b.ls_remote(owner.pubkey, identifier) == {
        "HEAD": second,
        "refs/heads/main": second,
        f"refs/nostr/{pr.id}": tip,
    }
    assert_fsck_clean(b.repo_path(owner.pubkey, identifier))
    assert_log_in_order(
        b,
        rf"debounced {identifier}: next attempt in 0\.\d+ s",
        rf"{identifier}: fetched 2 OIDs from ",
        rf"released from purgatory for {identifier}: 1 states, 1 PRs",
    )
    assert a.git_requests() == GitRequests(adverts=2, posts=2)  # the first sync, then one for both


def test_partial_oid_aggregation_from_multiple_servers(cluster, tmp_path):
    """S5.3, S5.4, S7.1: the state needs two commits; relay A1 has one, relay A2 the other.
    B fetches what each has and releases the state only after the second fetch, when every
    object is there."""
    owner, identifier = Key(), "aggregate"
    one = RepoBuilder.create(tmp_path / "one.git")
    main = one.chain(2, branch="main")[-1]
    two = RepoBuilder.create(tmp_path / "two.git")
    root = two.commit("feature root", files={"feature.txt": "a feature\n"})
    feature = two.commit(
        "feature work", parents=[root], files={"feature.txt": "more\n"}, branch="main"
    )
    # (test commits have fixed dates: distinct content keeps the two histories apart)
    a1, a2 = cluster.relay("A1"), cluster.relay("A2")
    b = cluster.relay("B", user_delay=0.2)
    domains = [a1.domain, a2.domain, b.domain]
    announcement = announcement_listing(owner, identifier, domains)
    for source, local, tip in ((a1, one, main), (a2, two, feature)):
        released_on_source(
            source, announcement, owner.state(identifier, {"refs/heads/main": tip}), local.path
        )

    state = owner.state(
        identifier,
        {"refs/heads/main": main, "refs/heads/feature": feature},
        created_at=1_700_000_500,
    )
    b.publish(announcement, state)
    b.wait_served(state)

    assert b.ls_remote(owner.pubkey, identifier) == {
        "HEAD": main,
        "refs/heads/main": main,
        "refs/heads/feature": feature,
    }
    assert_fsck_clean(b.repo_path(owner.pubkey, identifier))
    assert_log_in_order(
        b,
        rf"{identifier}: fetched 1 OIDs from {re.escape(a1.clone_url(owner.pubkey, identifier))}",
        rf"{identifier}: fetched 1 OIDs from {re.escape(a2.clone_url(owner.pubkey, identifier))}",
        rf"released from purgatory for {identifier}: 1 states",
    )
    assert len(re.findall(r"released from purgatory for ", b.log)) == 1, (
        "released before both fetches"
    )
    # A1 lacks one want: upload-pack refuses the whole request ("not our ref <oid>"), and the
    # retry without the named OID is a second exchange (S7.1). A2 is asked only for the rest.
    assert "not our ref " + feature in a1.log
    assert a1.git_requests() == GitRequests(adverts=2, posts=2)
    assert a2.git_requests() == ONE_FETCH


def test_push_triggers_unified_processing(cluster, tmp_path):
    """S10.6 → S8.1: one push to the relay that holds a state and a PR releases both (and
    promotes the held announcement) through the Releaser at once — no sync, no delay."""
    owner, contributor, identifier = Key(), Key(), "pushed"
    local = RepoBuilder.create(tmp_path / "local.git")
    main = local.chain(2, branch="main")[-1]
    tip = local.commit("the contribution", parents=[main])
    relay = cluster.relay("R")  # the 180 s user delay: only the push can release in time
    announcement = announcement_listing(owner, identifier, [relay.domain])
    state = owner.state(identifier, {"refs/heads/main": main})
    pr = contributor.pr(owner.pubkey, identifier, tip)
    relay.publish(announcement, state, pr)
    relay.wait_held(k30617=1, k30618=1, k1618=1)
    assert relay.served_ids(announcement.id, state.id, pr.id) == set()

    push(
        local.path,
        relay.clone_url(owner.pubkey, identifier),
        "refs/heads/main:refs/heads/main",
        f"{tip}:refs/nostr/{pr.id}",
    )
    relay.wait_served(announcement, state, pr, timeout=5.0)

    assert sum(relay.held().values()) == 0
    assert relay.ls_remote(owner.pubkey, identifier) == {
        "HEAD": main,
        "refs/heads/main": main,
        f"refs/nostr/{pr.id}": tip,
    }
    assert_log_in_order(
        relay,
        r"push landed in .*; releasing what it satisfies",
        rf"released from purgatory for {identifier}: 1 states, 1 PRs",
    )
    assert not fetch_lines(relay, "fetched"), "the relay synced instead of releasing on the push"


def test_live_sync_of_a_new_repository(cluster, tmp_path):
    """S10.7 live feed, S8.2 order: B already follows A when a user creates a repository on A.
    A's push releases the state and promotes the announcement; B must receive the announcement
    before the state it authorises (or refuse the state, with no second chance on a live feed),
    then hold the state, fetch from A and release it."""
    owner, identifier = Key(), "live"
    local = RepoBuilder.create(tmp_path / "local.git")
    main = local.chain(2, branch="main")[-1]
    a = cluster.relay("A")
    b = cluster.relay("B", fixed_domain=True, sync_from=[a])
    b.wait_for_log(r"sync source .*: caught up, 0 historic events")

    announcement = announcement_listing(owner, identifier, [a.domain, b.domain])
    state = owner.state(identifier, {"refs/heads/main": main})
    released_on_source(a, announcement, state, local.path)

    b.wait_served(announcement, state)
    assert b.ls_remote(owner.pubkey, identifier) == {"HEAD": main, "refs/heads/main": main}
    assert "no announcement exists" not in b.log
    assert a.git_requests() == ONE_FETCH


def test_rich_repository_then_a_history_rewrite_sync_like_for_like(cluster, tmp_path):
    """S2.1 (annotated tag, peeled ``^{}`` entry ignored), S10.3 (the state's author is a
    maintainer, authorised on B at release), S1.1 (a PR and a PR update), HEAD on a branch other
    than main; then a newer state rewrites history (main force-moved to an unrelated commit, the
    tag deleted) and reaches B live: B's refs equal A's after each step (S8.2)."""
    owner, maintainer, contributor, identifier = Key(), Key(), Key(), "rich"
    local = RepoBuilder.create(tmp_path / "local.git")
    main = local.chain(2, branch="main")[-1]
    dev = local.commit("dev work", parents=[main], branch="dev")
    tag = local.tag("v1", main)
    a = cluster.relay("A")
    domains = [a.domain, planned_domain("B")]
    announcement = owner.announcement(
        identifier,
        clone=[clone_url_at(d, owner.pubkey, identifier) for d in domains],
        relays=[f"ws://{d}" for d in domains],
        maintainers=[maintainer.pubkey],
    )
    state = maintainer.state(
        identifier,
        {
            "refs/heads/main": main,
            "refs/heads/dev": dev,
            "refs/tags/v1": tag,
            "refs/tags/v1^{}": main,
        },
        head="refs/heads/dev",
    )
    released_on_source(a, announcement, state, local.path)
    pr_tip = local.commit("contribution", parents=[dev])
    update_tip = local.commit("contribution, revised", parents=[pr_tip])
    pr = contributor.pr(owner.pubkey, identifier, pr_tip)
    update = contributor.pr(
        owner.pubkey, identifier, update_tip, kind=1619, created_at=1_700_000_300
    )
    for event, tip in ((pr, pr_tip), (update, update_tip)):
        a.publish(event)
        push(local.path, a.clone_url(owner.pubkey, identifier), f"{tip}:refs/nostr/{event.id}")
        a.wait_served(event)

    b = cluster.relay("B", fixed_domain=True, sync_from=[a])
    b.wait_served(announcement, state, pr, update)
    assert b.ls_remote(owner.pubkey, identifier) == a.ls_remote(owner.pubkey, identifier)
    assert b.ls_remote(owner.pubkey, identifier)["HEAD"] == dev

    rewritten = local.commit("rewritten history", files={"new.txt": "a fresh start\n"})
    newer = owner.state(
        identifier,
        {"refs/heads/main": rewritten, "refs/heads/dev": dev},
        head="refs/heads/dev",
        created_at=1_700_000_900,
    )
    a.publish(newer)
    push(
        local.path,
        a.clone_url(owner.pubkey, identifier),
        f"+{rewritten}:refs/heads/main",
        ":refs/tags/v1",
    )
    a.wait_served(newer)
    b.wait_served(newer)
    refs = b.ls_remote(owner.pubkey, identifier)
    assert refs == a.ls_remote(owner.pubkey, identifier)
    assert {name: oid for name, oid in refs.items() if not name.startswith("refs/nostr/")} == {
        "HEAD": dev,
        "refs/heads/main": rewritten,
        "refs/heads/dev": dev,
    }
    both = {state.id, newer.id}  # different authors: the newer state replaces nothing (S11.2)
    assert b.served_ids(*both) == a.served_ids(*both) == both
    assert_fsck_clean(b.repo_path(owner.pubkey, identifier))


def test_push_renaming_the_default_branch(cluster, tmp_path):
    """S10.6, S8.2: renaming the default branch (master → main, HEAD following) together with
    a new commit is one state and one push. The push is authorised (the refs after it equal the
    new state's), so git must not refuse to delete the branch HEAD still names: the release
    moves HEAD to main anyway. (Without a new commit the state's objects are already there and
    the relay aligns the refs on publish, S1.2, so the push has nothing left to do.)"""
    owner, identifier = Key(), "renamed"
    local = RepoBuilder.create(tmp_path / "local.git")
    old = local.chain(2, branch="master")[-1]
    relay = cluster.relay("R")
    announcement = announcement_listing(owner, identifier, [relay.domain])
    released_on_source(
        relay,
        announcement,
        owner.state(identifier, {"refs/heads/master": old}, head="refs/heads/master"),
        local.path,
    )
    new = local.commit("first commit on main", parents=[old])
    renamed = owner.state(
        identifier, {"refs/heads/main": new}, head="refs/heads/main", created_at=1_700_000_900
    )
    relay.publish(renamed)
    relay.wait_held(k30618=1)

    push(
        local.path,
        relay.clone_url(owner.pubkey, identifier),
        f"{new}:refs/heads/main",
        ":refs/heads/master",
    )
    relay.wait_served(renamed)
    assert relay.ls_remote(owner.pubkey, identifier) == {"HEAD": new, "refs/heads/main": new}
