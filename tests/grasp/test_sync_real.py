"""Purgatory sync end to end below the relay: the actor system over RealSyncContext, fetching
from real ``git http-backend`` servers on loopback (S4–S8).

Actor time is a FakeClock (the test decides when backoff has elapsed); the network, git and
the servers' slowness are real.
"""

import socket
import time

import pytest

from actors.clock import FakeClock
from actors.config import SyncConfig
from grasp.purgatory import PurgatoryStore
from tests.support.actor_harness import Harness
from tests.support.gitchaos import trickle
from tests.support.gitrepo import RepoBuilder, assert_fsck_clean, for_each_ref
from tests.support.gitserver import GitServer
from tests.support.nip34 import Key

D = "project"


def _closed_port_url(host: str) -> str:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    return f"http://{host}:{port}/{D}.git"


@pytest.fixture
def remotes(tmp_path):
    """Two real remotes on distinct loopback hosts: a fast one and a slow (trickling) one."""
    fast = GitServer(tmp_path / "fast", host="127.0.0.2")
    slow = GitServer(
        tmp_path / "slow", host="127.0.0.3", wrap=trickle(chunk_bytes=256, pause_secs=0.02)
    )
    with fast, slow:
        yield fast, slow


def _start(world, clock, **config):
    world.purgatory.now = clock.now
    return Harness(world.ctx, SyncConfig(**{"synced_delay": 0.0, **config}), clock)


def test_three_maintainers_three_servers_fast_slow_down(world, remotes):
    """The seed's motivating case: each state is released right after its own fetch, without
    waiting for the others; the one whose server is down stays held and is retried with backoff."""
    fast, slow = remotes
    owner, m1, m2 = Key(), Key(), Key()
    a = RepoBuilder.create(fast.root / f"{D}.git").commit()
    b = RepoBuilder.create(slow.root / f"{D}.git").commit()
    c = "c" * 40  # only on the server that is down
    down = _closed_port_url("127.0.0.4")
    world.announce(
        owner,
        D,
        clone=[fast.url(f"{D}.git"), slow.url(f"{D}.git"), down],
        maintainers=[m1.pubkey, m2.pubkey],
    )
    s_fast = world.hold_state(owner.state(D, {"refs/heads/main": a}, created_at=1_700_000_100))
    s_slow = world.hold_state(m1.state(D, {"refs/heads/main": b}, created_at=1_700_000_200))
    s_down = world.hold_state(m2.state(D, {"refs/heads/main": c}, created_at=1_700_000_300))
    released_at = {}
    world.workflow.notify = lambda event: released_at.setdefault(event.id, time.monotonic())

    clock = FakeClock()
    h = _start(world, clock)
    try:
        h.enqueue(D)  # settles: the whole first attempt has run
        assert set(released_at) == {s_fast.event.id, s_slow.event.id}
        first_slow_request = min(r.time for r in slow.requests)
        assert released_at[s_fast.event.id] < first_slow_request  # released before slow began
        assert world.purgatory.contains(s_down.event.id)
        repo = world.repo(owner, D)
        assert for_each_ref(repo) == {"refs/heads/main": b}  # the newer of the two released
        assert_fsck_clean(repo)
        assert h.status().scheduler.next_attempts == ((D, 20.0),)

        fast_requests = fast.count(method="POST")
        h.advance(19.9)
        assert fast.count(method="POST") == fast_requests  # backing off
        h.advance(0.1)
        assert fast.count(method="POST") > fast_requests  # the retry, asking only for c
        assert h.status().scheduler.next_attempts == ((D, 40.0),)
        assert world.purgatory.contains(s_down.event.id)
    finally:
        h.system.stop()


def test_objects_split_across_two_servers_are_aggregated(world, remotes):
    """S5.3/S7.1: neither server has all of a state's objects; one request per URL fetches
    what each has, and the state is released only once both fetched."""
    fast, slow = remotes
    owner = Key()
    base = RepoBuilder.create(fast.root / f"{D}.git")
    main = base.chain(2, branch="main")[-1]
    other = RepoBuilder.create(slow.root / f"{D}.git")
    feature = other.chain(2, branch="feature")[-1]
    world.announce(owner, D, clone=[fast.url(f"{D}.git"), slow.url(f"{D}.git")])
    state = world.hold_state(
        owner.state(D, {"refs/heads/main": main, "refs/heads/feature": feature})
    )
    clock = FakeClock()
    h = _start(world, clock)
    try:
        h.enqueue(D)
    finally:
        h.system.stop()
    assert world.notified_ids == [state.event.id]
    assert for_each_ref(world.repo(owner, D)) == {
        "refs/heads/main": main,
        "refs/heads/feature": feature,
    }
    for server in (fast, slow):
        # protocol v2: one ls-refs and one fetch POST per URL for the whole identifier
        assert server.count(service="git-upload-pack", method="POST") <= 2


def test_restored_pr_is_requeued_and_synced_from_its_clone_url(world, remotes, tmp_path):
    """S9.1 (deviation: the original forgot restored PRs) and S3.1 (PR clone URLs)."""
    fast, _ = remotes
    owner, contributor = Key(), Key()
    world.announce(owner, D, clone=[])  # the announcement lists no other server
    fork = RepoBuilder.create(fast.root / "fork.git")
    tip = fork.chain(2, branch="pr")[-1]
    pr = world.hold_pr(contributor.pr(owner.pubkey, D, tip, clone=[fast.url("fork.git")]))
    state_file = tmp_path / "purgatory-state.json"
    world.purgatory.save(state_file)

    restored = PurgatoryStore(now=world.clock.now)
    assert restored.restore(state_file) == [D]
    world.purgatory = world.index.purgatory = world.workflow.purgatory = restored
    world.ctx.purgatory = restored
    clock = FakeClock()
    h = _start(world, clock)
    try:
        h.system.enqueue_pending()
        h.settle()
        h.advance(0.5)  # the immediate delay for restored identifiers (S4.2)
    finally:
        h.system.stop()
    assert world.notified_ids == [pr.event_id]
    assert for_each_ref(world.repo(owner, D))[f"refs/nostr/{pr.event_id}"] == tip
