"""Placeholders through the CLI (S14.3): a stranger's push to ``refs/nostr/<id>`` is bounded,
expires and leaves nothing behind, and a signed PR event wins over a squatted event id.

The relay lives with a 3 s lifetime and a 0.3 s sweep (``--purgatory-expiry-secs``,
``--maintenance-interval-secs``) and the default placeholder bounds (32 MiB per push, 20 per
repository). Its repository is an accepted one (announcement stored), so only placeholders
expire in these tests.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.support import E2ERelay, announcement_listing, push
from tests.support.gitrepo import RepoBuilder, for_each_ref, git, objects_listing
from tests.support.nip34 import Key
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

ID = "placeholders"
SHORT_LIFE = ("--purgatory-expiry-secs", "3", "--maintenance-interval-secs", "0.3")


def _accepted_repository(relay: E2ERelay, owner: Key, tmp_path: Path) -> tuple[Path, RepoBuilder]:
    """The owner's repository with a main branch, served (announcement and state stored)."""
    announcement = announcement_listing(owner, ID, [relay.domain])
    work = RepoBuilder.create(tmp_path / "work.git")
    main = work.commit("the owner's work", branch="main")
    state = owner.state(ID, {"refs/heads/main": main})
    relay.publish(announcement, state)
    push(work.path, relay.clone_url(owner.pubkey, ID), "main:main")
    relay.wait_served(announcement, state)
    return relay.repo_path(owner.pubkey, ID), work


def _try_push(local: Path, url: str, refspec: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "--git-dir", str(local), "push", "--porcelain", url, refspec],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _size(repo: Path) -> tuple[int, set[str]]:
    """Bytes of every file below ``objects/``, and the listing itself."""
    total = sum(p.stat().st_size for p in (repo / "objects").rglob("*") if p.is_file())
    return total, objects_listing(repo)


def _blob_commit(work: RepoBuilder, size: int, branch: str) -> str:
    """A commit on ``branch`` holding ``size`` random (incompressible) bytes."""
    path = work.path.parent / f"{branch}.bin"
    path.write_bytes(os.urandom(size))
    blob = git("hash-object", "-w", path, git_dir=work.path).strip()
    tree = git("mktree", git_dir=work.path, input=f"100644 blob {blob}\tdata.bin\n".encode())
    commit = git("commit-tree", tree.strip(), "-m", f"{size} bytes", git_dir=work.path).strip()
    work.set_ref(f"refs/heads/{branch}", commit)
    return commit


def test_s14_3_placeholder_bounds_expiry_and_cleanup(cluster, tmp_path):
    """40 MiB refused at the defaults (nothing stored); 1 MiB accepted; after its lifetime the
    sweep has the Releaser delete the ref and prune its objects: the repository is byte for
    byte the size it was."""
    owner = Key()
    relay = cluster.relay("B", *SHORT_LIFE)
    repo, _ = _accepted_repository(relay, owner, tmp_path)
    before = _size(repo)
    stranger = RepoBuilder.create(tmp_path / "stranger.git")
    git("config", "core.compression", "0", git_dir=stranger.path)  # random data: save the CPU
    _blob_commit(stranger, 40 * 1024 * 1024, "huge")
    _blob_commit(stranger, 1024 * 1024, "small")
    url = relay.clone_url(owner.pubkey, ID)

    refused = _try_push(stranger.path, url, f"huge:refs/nostr/{'ab' * 32}")
    assert refused.returncode != 0
    assert "remote: refs/nostr/: a push for an event this relay does not know may bring at " in (
        refused.stderr
    )
    assert "at most 32.0 MiB of objects; this one brings 40.0 MiB" in refused.stderr
    assert _size(repo) == before

    small = f"refs/nostr/{'cd' * 32}"
    assert _try_push(stranger.path, url, f"small:{small}").returncode == 0
    assert small in for_each_ref(repo) and _size(repo)[0] > before[0] + 1024 * 1024
    relay.wait_held(kplaceholder=1)

    wait_for(
        lambda: small not in for_each_ref(repo) and _size(repo) == before,
        timeout=15,
        interval=0.1,
        message=lambda: f"the placeholder's ref and objects to go: {_size(repo)[0]} bytes",
    )
    assert relay.held()["placeholder"] == 0
    # logged after the files are gone, so it may follow the size check by a moment
    relay.wait_for_log(r"pruned 3 objects only expired placeholders reached")


def test_s14_3_a_signed_pr_event_wins_over_a_squatted_placeholder(cluster, tmp_path):
    """A stranger pushes junk to ``refs/nostr/<id>`` of two PR events before they are
    published. The first PR names a commit the relay has: stored, and the ref follows it. The
    second names one it lacks: held, and the squatted ref is deleted meanwhile."""
    owner, contributor = Key(), Key()
    relay = cluster.relay("B")
    repo, work = _accepted_repository(relay, owner, tmp_path)
    main = for_each_ref(repo)["refs/heads/main"]
    stranger = RepoBuilder.create(tmp_path / "stranger.git")
    stranger.commit("squatting", branch="junk")
    here = contributor.pr(owner.pubkey, ID, main)
    absent = contributor.pr(owner.pubkey, ID, "e" * 40, created_at=1_700_000_400)
    url = relay.clone_url(owner.pubkey, ID)
    for event in (here, absent):
        assert _try_push(stranger.path, url, f"junk:refs/nostr/{event.id}").returncode == 0
    relay.wait_held(kplaceholder=2)

    with relay.client() as client:
        assert client.publish(here)[2:] == [True, ""]  # stored: the signed event wins
        held = client.publish(absent)
    assert held[2] is True and held[3].startswith("purgatory: PR held until commit")
    assert for_each_ref(repo)[f"refs/nostr/{here.id}"] == main
    wait_for(
        lambda: f"refs/nostr/{absent.id}" not in for_each_ref(repo),
        timeout=10,
        message="the squatted ref of the held PR to be deleted",
    )
    relay.wait_served(here)
    assert relay.held()["1618"] == 1 and relay.held()["placeholder"] == 0
