"""Beyond the seed: the remotes a relay meets in the wild, against a ``grasp-relay`` process.

Each test starts relay B first (its default authority ``127.0.0.1:<port>`` is then known) with
a short user delay, publishes an announcement listing B plus the remote(s) under test and a
state whose objects only those remotes have, and watches B hold, fetch and release — or, for
the URL policy, refuse to fetch at all. The remotes are test servers with request logs
(:mod:`tests.integration.remotes` explains the counts).
"""

from __future__ import annotations

import re
import time

import pytest
from gevent.event import Event

from tests.integration.remotes import GitRequests, closed_port_url, gate_first_pack
from tests.integration.support import (
    announcement_listing,
    assert_log_in_order,
    planned_domain,
    released_on_source,
)
from tests.support.gitrepo import RepoBuilder, assert_fsck_clean, git
from tests.support.nip34 import Key
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

ID = "remote"


def test_plain_git_http_backend_remote(cluster):
    """S3.1, S7.1: a clone URL on a plain ``git http-backend`` server (no relay, no Nostr) is
    an ordinary source: one v2 exchange (ls-refs, then one fetch for every needed OID)."""
    owner = Key()
    b = cluster.relay("B", user_delay=0.2)
    g = cluster.git_server("G", host="127.0.0.2")
    main = RepoBuilder.create(g.root / f"{ID}.git").chain(3, branch="main")[-1]
    announcement = announcement_listing(owner, ID, [b.domain], extra_clone=[g.url(f"{ID}.git")])
    state = owner.state(ID, {"refs/heads/main": main})
    b.publish(announcement, state)
    b.wait_served(announcement, state)

    assert b.ls_remote(owner.pubkey, ID) == {"HEAD": main, "refs/heads/main": main}
    assert_fsck_clean(b.repo_path(owner.pubkey, ID))
    assert cluster.git_requests()["G"] == GitRequests(adverts=1, posts=1, ls_refs=0, fetches=1)


def test_dead_url_listed_first_sync_moves_on(cluster):
    """S5.3: a URL that refuses connections is tried, logged and passed over within the same
    attempt — the next URL delivers and the state is released without any backoff (S4.1)."""
    owner = Key()
    b = cluster.relay("B", user_delay=0.2)
    g = cluster.git_server("G", host="127.0.0.2")
    main = RepoBuilder.create(g.root / f"{ID}.git").chain(2, branch="main")[-1]
    dead = closed_port_url("127.0.0.3", f"{ID}.git")
    announcement = announcement_listing(
        owner, ID, [b.domain], extra_clone=[dead, g.url(f"{ID}.git")]
    )
    state = owner.state(ID, {"refs/heads/main": main})
    b.publish(announcement, state)
    b.wait_served(state)

    assert_log_in_order(
        b,
        rf"{ID}: fetch from {re.escape(dead)} failed \(refused\)",
        rf"{ID}: fetched 1 OIDs from {re.escape(g.url(ID + '.git'))}",
        rf"released from purgatory for {ID}: 1 states",
        rf"sync of {ID} complete",
    )
    assert f"{ID} incomplete" not in b.log  # one attempt, no backoff
    assert cluster.git_requests()["G"] == GitRequests(adverts=1, posts=1, ls_refs=0, fetches=1)


def test_v0_only_server_refusing_unadvertised_wants_falls_back(cluster):
    """S7.1: a protocol-v0 server that only serves advertised tips refuses a want for an
    ancestor commit; the fetch falls back to the advertised tips, which contain it, and the
    state (pointing at the ancestor) is released."""
    owner = Key()
    b = cluster.relay("B", user_delay=0.2)
    v0 = cluster.v0_server("V0", host="127.0.0.2")
    older, newest = RepoBuilder.create(v0.root / f"{ID}.git").chain(3, branch="main")[1:]
    announcement = announcement_listing(owner, ID, [b.domain], extra_clone=[v0.url(f"{ID}.git")])
    state = owner.state(ID, {"refs/heads/main": older})  # not a tip on the server
    b.publish(announcement, state)
    b.wait_served(state)

    assert b.ls_remote(owner.pubkey, ID) == {"HEAD": older, "refs/heads/main": older}
    repo = b.repo_path(owner.pubkey, ID)
    assert_fsck_clean(repo)
    assert_log_in_order(
        b,
        rf"falling back to all advertised ref tips of {re.escape(v0.url(ID + '.git'))}",
        rf"released from purgatory for {ID}: 1 states",
    )
    tally = cluster.git_requests()["V0"]
    assert tally.failed == 1, tally  # the refused want (HTTP 500), then the tips fetch succeeds
    assert tally.fetches == 2 and tally.adverts == 2, tally
    assert (
        newest not in b.ls_remote(owner.pubkey, ID).values()
    )  # fetched, but refs follow the state


def test_without_allow_private_fetch_loopback_is_never_contacted(cluster):
    """S3.4: without ``--allow-private-fetch`` a clone URL on a loopback address is refused
    before any network use — the server's request log stays empty — the refusal is logged
    naming the flag (S18.2), the URL counts as tried, and the state stays held with the S4.1
    backoff."""
    owner = Key()
    b = cluster.relay("B", user_delay=0.2, allow_private_fetch=False)
    g = cluster.git_server("G")
    main = RepoBuilder.create(g.root / f"{ID}.git").chain(1, branch="main")[-1]
    url = g.url(f"{ID}.git")
    announcement = announcement_listing(owner, ID, [b.domain], extra_clone=[url])
    state = owner.state(ID, {"refs/heads/main": main})
    b.publish(announcement, state)

    b.wait_for_log(
        rf"WARNING .* not fetching from {re.escape(url)}, the fetch policy refuses it: "
        r".*127\.0\.0\.1 is a loopback address \(--allow-private-fetch allows it\)"
    )
    b.wait_for_log(rf"{ID} incomplete: attempt 1, retry in 20\.0 s")
    assert g.requests == []
    assert b.served_ids(state.id) == set()
    assert b.held()["30618"] == 1


def test_busy_domain_queues_the_other_identifier_and_serves_it_when_free(cluster):
    """S5.3, S6.1, S6.3: with one fetch per domain allowed, the identifier that finds the
    domain busy is queued on its DomainThrottle instead of failing, and is fetched the moment
    the running fetch completes — not after the Scheduler's 20 s backoff (S4.1)."""
    owner = Key()
    started, release = Event(), Event()
    g = cluster.git_server("G", host="127.0.0.2", wrap=gate_first_pack(started, release))
    b = cluster.relay("B", "--sync-domain-concurrent", "1", user_delay=0.2)
    events, identifiers = [], ("first", "second")
    for identifier in identifiers:
        main = RepoBuilder.create(g.root / f"{identifier}.git").commit(
            files={"name.txt": f"{identifier}\n"}, branch="main"
        )
        events += [
            announcement_listing(
                owner, identifier, [b.domain], extra_clone=[g.url(f"{identifier}.git")]
            ),
            owner.state(identifier, {"refs/heads/main": main}),
        ]
    b.publish(*events)

    wait_for(started.is_set, 10, message="a fetch to reach G")
    queued = b.wait_for_log(r"(first|second): queued on throttled domain 127\.0\.0\.2")
    assert len(cluster.pack_requests("G")) == 1  # the queued one did not start a second fetch
    released_at = time.monotonic()
    release.set()
    b.wait_served(*events, timeout=5.0)  # far sooner than the 20 s backoff of its sync attempt

    first, second = cluster.pack_requests("G")
    assert second.time > released_at, "the queued identifier's fetch overlapped the running one"
    waiting = queued.group(1)
    assert_log_in_order(
        b,
        rf"{waiting}: fetched 1 OIDs from {re.escape(g.url(waiting + '.git'))}",
        rf"released from purgatory for {waiting}: 1 states",
    )


def test_pr_clone_url_on_a_fork_supplies_the_pr_commit(cluster, tmp_path):
    """S3.1: a held PR's own ``clone`` URLs are candidates after the announcement's. The PR
    commit is only on the contributor's fork (a plain git server named in no announcement):
    the announced relay A cannot serve it, the fork can, and B releases the PR."""
    owner, contributor = Key(), Key()
    local = RepoBuilder.create(tmp_path / "local.git")
    main = local.chain(2, branch="main")[-1]
    tip = local.commit("contribution", parents=[main], branch="pr")
    fork = cluster.git_server("Fork", host="127.0.0.2")
    git("clone", "--bare", "--quiet", local.path, fork.root / "fork.git")
    a = cluster.relay("A")
    announcement = announcement_listing(owner, ID, [a.domain, planned_domain("B")])
    state = owner.state(ID, {"refs/heads/main": main})
    released_on_source(a, announcement, state, local.path)
    b = cluster.relay("B", fixed_domain=True, sync_from=[a], user_delay=0.2)
    b.wait_served(state)

    pr = contributor.pr(owner.pubkey, ID, tip, clone=[fork.url("fork.git")])
    b.publish(pr)
    b.wait_served(pr)

    assert b.ls_remote(owner.pubkey, ID)[f"refs/nostr/{pr.id}"] == tip
    assert_log_in_order(
        b,
        rf"{ID}: {re.escape(a.clone_url(owner.pubkey, ID))} had none of the 1 needed OIDs",
        rf"{ID}: fetched 1 OIDs from {re.escape(fork.url('fork.git'))}",
        rf"released from purgatory for {ID}: 0 states, 1 PRs",
    )
    assert cluster.git_requests()["Fork"] == GitRequests(adverts=1, posts=1, ls_refs=0, fetches=1)
