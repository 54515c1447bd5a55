"""Faults: a relay stopped or killed while events wait, and a remote that fails for a while.

* SIGTERM with events held: purgatory is in the event database already (S9.1, nothing is
  written at shutdown), the next start rebuilds it and queues every restored identifier again
  at once — here nothing else could trigger a sync (no sync source, no new events), so the
  release proves it. SIGKILL with every kind held: tests/integration/test_durability.py.
* kill -9 in the middle of a fetch: the held events come back from the database; the sync
  source re-delivers the history too (S10.7: duplicates now), the events are synced and
  released, and the repository is consistent (``git fsck``) although a pack was arriving when
  the process died.
* HTTP 500 from the only remote: each failed attempt backs off 20/40/80 s (S4.1) — scaled by
  ``--sync-backoff-scale 0.01`` to 0.2/0.4/0.8 s — and the state is released once the remote
  recovers. This scenario also records the message trace committed as
  ``tests/traces/e2e_backoff.jsonl`` (see ``test_trace.py``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from gevent.event import Event

from grasp.git.pack_ingest import STAGING_PREFIX
from tests.integration.backoff_trace import (
    BACKOFF_ARGS,
    BACKOFF_HOST,
    BACKOFF_TRACE,
    assert_backoff_trace_replays,
)
from tests.integration.remotes import GitRequests, Outage, stall_first_pack
from tests.integration.support import (
    announcement_listing,
    assert_log_in_order,
    planned_domain,
    released_on_source,
)
from tests.support.gitchaos import http_status
from tests.support.gitrepo import RepoBuilder, assert_fsck_clean, linear_history, objects_listing
from tests.support.nip34 import Key
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

ID = "faults"


def test_sigterm_with_events_held_then_restart_releases_them(cluster):
    """S9.1: held events — a state and a PR (the original forgot restored PRs) — survive a
    graceful stop, and the restarted relay queues them again with the short delay, long
    before the 20 s backoff the stopped process was waiting out."""
    owner, contributor = Key(), Key()
    outage = Outage(down=True)
    g = cluster.git_server("G", host="127.0.0.2", wrap=outage)
    remote = RepoBuilder.create(g.root / f"{ID}.git")
    main = remote.chain(2, branch="main")[-1]
    tip = remote.commit("contribution", parents=[main], branch="pr")
    b = cluster.relay("B", fixed_domain=True, user_delay=0.2)  # its address changes on restart
    announcement = announcement_listing(owner, ID, [b.domain], extra_clone=[g.url(f"{ID}.git")])
    state = owner.state(ID, {"refs/heads/main": main})
    pr = contributor.pr(owner.pubkey, ID, tip)
    b.publish(announcement, state, pr)
    b.wait_for_log(rf"{ID} incomplete: attempt 1, retry in 20\.0 s")
    assert cluster.git_requests()["G"].failed == 1

    assert b.stop() == 0
    assert not (b.data_dir / "purgatory-state.json").exists()  # S9.1: the database has it
    outage.down = False
    b.restart()
    b.wait_served(announcement, state, pr, timeout=5.0)

    assert_log_in_order(
        b,
        r"restored purgatory",
        r"re-queueing 1 restored identifiers",
        rf"released from purgatory for {ID}: 1 states, 1 PRs",
    )
    assert b.ls_remote(owner.pubkey, ID) == {
        "HEAD": main,
        "refs/heads/main": main,
        f"refs/nostr/{pr.id}": tip,
    }
    assert_fsck_clean(b.repo_path(owner.pubkey, ID))


def test_kill_9_mid_fetch_then_restart_source_redelivers(cluster, tmp_path):
    """S7.2, S10.7: B dies by SIGKILL while a pack is arriving from the first clone URL. After
    the restart the sync source re-delivers the events, B fetches again (the remote now
    answers) and releases them; its repository passes ``git fsck``."""
    owner = Key()
    started, release = Event(), Event()
    g = cluster.git_server(
        "G", host="127.0.0.2", wrap=stall_first_pack(started, release, after_bytes=32_768)
    )
    served = g.root / f"{ID}.git"
    main = linear_history(served, 300)[-1]  # a pack of a few hundred KiB: the stall is mid-pack
    a = cluster.relay("A")
    announcement = announcement_listing(
        owner, ID, [a.domain, planned_domain("B")], first_clone=[g.url(f"{ID}.git")]
    )
    state = owner.state(ID, {"refs/heads/main": main})
    released_on_source(a, announcement, state, served)

    b = cluster.relay("B", fixed_domain=True, sync_from=[a])
    wait_for(started.is_set, 10, message="B's fetch to stall mid-pack")
    b.kill()
    release.set()
    b.restart()
    b.wait_served(announcement, state)

    assert f"state {state.id} of {ID} held in purgatory" in b.previous_logs[0]
    assert "restored purgatory" in b.process.log  # S9.1: back from the database
    repo = b.repo_path(owner.pubkey, ID)
    assert b.ls_remote(owner.pubkey, ID) == {"HEAD": main, "refs/heads/main": main}
    assert_fsck_clean(repo)
    leftovers = [p for p in objects_listing(repo) if p.startswith(STAGING_PREFIX) or "tmp" in p]
    assert not leftovers, f"a staging directory or temporary file survived the kill: {leftovers}"
    stalled, good = cluster.pack_requests("G")  # the pack cut short by the kill, then a whole one
    assert stalled.bytes_sent == 32_768 < good.bytes_sent, (stalled, good)
    assert a.git_requests() == GitRequests()  # G delivered: A's URL was never needed


def test_http_500_then_recovery_backs_off_then_releases(cluster, tmp_path):
    """S4.1: three failed attempts back off 0.2, 0.4 and 0.8 s (20/40/80 s scaled by 0.01);
    the fourth attempt finds the remote recovered and the state is released."""
    owner = Key()
    g = cluster.git_server(
        "G", host=BACKOFF_HOST, wrap=http_status("500 Internal Server Error", first_n=3)
    )
    main = RepoBuilder.create(g.root / f"{ID}.git").chain(2, branch="main")[-1]
    trace = tmp_path / "trace.jsonl"
    b = cluster.relay("B", *BACKOFF_ARGS, "--trace", str(trace))
    announcement = announcement_listing(owner, ID, [b.domain], extra_clone=[g.url(f"{ID}.git")])
    state = owner.state(ID, {"refs/heads/main": main})
    b.publish(announcement, state)
    b.wait_served(state)

    assert_log_in_order(
        b,
        *(
            rf"{ID} incomplete: attempt {n}, retry in {secs} s"
            for n, secs in ((1, "0.2"), (2, "0.4"), (3, "0.8"))
        ),
        rf"released from purgatory for {ID}: 1 states",
    )
    starts = [r.time for r in g.requests if r.method == "GET"]
    assert len(starts) == 4, g.requests
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    for gap, backoff in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert backoff <= gap < backoff + 0.3, f"attempt gaps {gaps}"
    assert cluster.git_requests()["G"] == GitRequests(
        adverts=4, posts=1, ls_refs=0, fetches=1, failed=3
    )

    assert b.stop() == 0  # the trace is complete and flushed
    if os.environ.get("E2E_RECORD_TRACE") == "1":
        shutil.copyfile(trace, BACKOFF_TRACE)
    assert_backoff_trace_replays(trace)


def index_pack_gate(directory: Path, gate: Path) -> Path:
    """A ``git`` on PATH that, for ``index-pack`` only, creates ``gate`` and waits for
    ``<gate>.go`` (30 s at most) before running the real git: a slow disk, frozen where the
    test wants it."""
    real_git = shutil.which("git")
    directory.mkdir(parents=True)
    shim = directory / "git"
    shim.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" index-pack "*)\n'
        f'  : > "{gate}"\n'
        f'  i=0; while [ ! -e "{gate}.go" ] && [ $i -lt 1500 ]; '
        "do sleep 0.02; i=$((i + 1)); done ;;\n"
        "esac\n"
        f'exec "{real_git}" "$@"\n'
    )
    shim.chmod(0o755)
    return directory


def test_kill_9_while_indexing_leaves_no_staging_directory(cluster, tmp_path):
    """S7.2 ("no partial pack"): B dies by SIGKILL while ``git index-pack`` writes the fetched
    pack into its staging directory ``objects/incoming-grasp-*``. The orphaned index-pack
    still finishes there; after the restart and a successful sync the repository must not
    keep that directory (a full, never-used copy of the pack). Found by this test; fixed in
    6e9f903 (the relay sweeps such leftovers before it serves)."""
    owner = Key()
    gate = tmp_path / "index-pack.gate"
    shim = index_pack_gate(tmp_path / "shim", gate)
    g = cluster.git_server("G", host="127.0.0.2")
    # 120 files: a pack of more than SMALL_PACK_MAX_OBJECTS, so ``git index-pack`` (not the
    # in-process indexer of small packs, grasp.git.small_pack) indexes it
    files = {f"f{n}.txt": f"{n}\n" for n in range(120)}
    main = RepoBuilder.create(g.root / f"{ID}.git").commit(files=files, branch="main")
    b = cluster.relay(
        "B",
        fixed_domain=True,
        user_delay=0.2,
        env={"PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"},
    )
    announcement = announcement_listing(owner, ID, [b.domain], extra_clone=[g.url(f"{ID}.git")])
    state = owner.state(ID, {"refs/heads/main": main})
    b.publish(announcement, state)
    wait_for(gate.exists, 10, message="B's index-pack to start")
    b.kill()
    Path(f"{gate}.go").touch()  # the orphaned index-pack completes, as it would have anyway

    b.restart()  # S9.1: the held state came back from the database and is queued again
    b.wait_served(state)
    repo = b.repo_path(owner.pubkey, ID)
    assert_fsck_clean(repo)
    leftovers = sorted(p for p in objects_listing(repo) if p.startswith(STAGING_PREFIX))
    assert not leftovers, f"staging left behind by the killed relay: {leftovers}"


def test_a_release_that_fails_with_the_objects_present_is_retried_until_it_succeeds(cluster):
    """S8.2 with S5.3: another writer holds the ref's lock, so aligning the only repository
    fails with every object present. The state stays held (it used to be served at once, the
    repository left behind it and never aligned again), the sync is incomplete, S4.1's backoff
    (scaled by 0.01) tries the release again without asking the server again (the history
    shows the one request), and once the writer is done the state is served with the refs it
    names."""
    owner = Key()
    g = cluster.git_server("G", host="127.0.0.2")
    remote = RepoBuilder.create(g.root / f"{ID}.git")
    main = remote.chain(2, branch="main")[-1]
    b = cluster.relay("B", "--sync-backoff-scale", "0.01", user_delay=0.1)
    announcement = announcement_listing(owner, ID, [b.domain], extra_clone=[g.url(f"{ID}.git")])
    b.publish(announcement)
    repo = b.repo_path(owner.pubkey, ID)
    locks = [repo / "packed-refs.lock", repo / "refs" / "heads" / "main.lock"]
    for lock in locks:  # a live writer's (young: never taken over, docs/durability.rst D9)
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_bytes(b"")
    state = owner.state(ID, {"refs/heads/main": main})
    b.publish(state)

    def failed_releases() -> int:
        return sum(f"releasing {ID}: " in line for line in b.log.splitlines())

    wait_for(lambda: failed_releases() >= 3, 10, message=lambda: f"retries\n{b.log_tail()}")
    assert len(cluster.pack_requests("G")) == 1  # the objects came once; retries only release
    assert state.id not in b.served_ids(state.id)
    [history] = [h for h in b.status()["history"]["identifiers"] if h["identifier"] == ID]
    assert history["attempt_count"] >= 2  # S4.1: incomplete syncs, retried with backoff
    # S18.1: the one request made; the retries found nothing absent and asked nobody
    assert [(a["outcome"], a["reason"]) for a in history["attempts"]] == [
        ("released", "release_failed")
    ]
    for lock in locks:
        lock.unlink()  # the other writer is done
    b.wait_served(state)
    assert b.ls_remote(owner.pubkey, ID)["refs/heads/main"] == main


def test_an_owner_repository_left_behind_by_a_release_is_aligned_on_retry(cluster):
    """S8.2 with D9: alice's state is the latest for both owners (bob lists her as a
    maintainer). Bob's ref is locked by another writer, so the release serves the state for
    alice and leaves bob's repository behind: the relay keeps retrying it with S4.1's backoff
    (scaled by 0.01) while the lock is there, without asking the server again, and once the
    writer is done bob's repository names the state's commit. It used to keep its old refs
    until bob's next state or push."""
    alice, bob = Key(), Key()
    g = cluster.git_server("G", host="127.0.0.2")
    remote = RepoBuilder.create(g.root / f"{ID}.git")
    main = remote.chain(2, branch="main")[-1]
    b = cluster.relay("B", "--sync-backoff-scale", "0.01", user_delay=0.1)
    extra = [g.url(f"{ID}.git")]
    b.publish(announcement_listing(alice, ID, [b.domain], extra_clone=extra))
    b.publish(announcement_listing(bob, ID, [b.domain], extra_clone=extra,
                                   maintainers=[alice.pubkey]))  # fmt: skip
    locks = [b.repo_path(bob.pubkey, ID) / "refs" / "heads" / "main.lock"]
    locks.append(locks[0].parents[2] / "packed-refs.lock")
    for lock in locks:  # a live writer's (young: never taken over)
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_bytes(b"")
    state = alice.state(ID, {"refs/heads/main": main})
    b.publish(state)
    b.wait_served(state)
    assert b.ls_remote(alice.pubkey, ID)["refs/heads/main"] == main

    def failed_releases() -> int:
        return sum(f"releasing {ID}: " in line for line in b.log.splitlines())

    wait_for(lambda: failed_releases() >= 3, 10, message=lambda: f"retries\n{b.log_tail()}")
    assert len(cluster.pack_requests("G")) == 1  # the objects came once; retries only align
    assert "refs/heads/main" not in b.ls_remote(bob.pubkey, ID)
    for lock in locks:
        lock.unlink()  # the other writer is done
    wait_for(lambda: b.ls_remote(bob.pubkey, ID).get("refs/heads/main") == main, 10,
             message=lambda: f"bob's repository never aligned\n{b.log_tail()}")  # fmt: skip
