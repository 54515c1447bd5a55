"""GRASP-05 archive mode end to end, every relay a process started by the CLI (S17.5).

Relay A hosts a repository whose announcement lists only A. Relay B (``--archive-all``, and
another with ``--archive <npub>``) is sent the announcement and the state, accepts them though
they do not list B, fetches the git data from A's clone URL by purgatory sync, serves it
(``git clone`` from B shows the commit) and refuses a ``git push`` with the archive's reason —
also after a restart, since "archived" is derived from the configuration and the stored
announcement, never kept in memory only.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from grasp.nostr.bech32 import npub_encode
from tests.support.gitrepo import RepoBuilder, git
from tests.support.nip34 import Key
from tests.support.relay import RelayClient, RelayProcess
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow
D = "archived"


def push(git_dir: Path, url: str, refspec: str = "main:main") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), "push", url, refspec],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def origin(tmp_path):
    """Relay A serving the repository; its announcement and state, the pushed tip, the work."""
    a = RelayProcess(tmp_path / "a").start()
    try:
        owner = Key()
        npub = npub_encode(owner.pubkey)
        announcement = owner.announcement(
            D, clone=[f"{a.http_url}/{npub}/{D}.git"], relays=[a.ws_url]
        )
        work = RepoBuilder.create(tmp_path / "work.git")
        tip = work.chain(3, branch="main")[-1]
        state = owner.state(D, {"refs/heads/main": tip})
        to_a = RelayClient(a.ws_url)
        for event in (announcement, state):
            assert to_a.publish(event)[2] is True
        pushed = push(work.path, f"{a.http_url}/{npub}/{D}.git")
        assert pushed.returncode == 0, pushed.stderr
        wait_for(lambda: to_a.req("a", {"ids": [state.id]}), message="A serves the state")
        to_a.close()
        yield owner, announcement, state, tip, work
    finally:
        a.stop()


def archive_and_check(tmp_path: Path, name: str, origin, *archive_args: str) -> RelayProcess:
    """Start B, send it the events, wait until it serves them; clone from B; push refused."""
    owner, announcement, state, tip, work = origin
    npub = npub_encode(owner.pubkey)
    b = RelayProcess(tmp_path / name, "--allow-private-fetch", *archive_args).start()
    try:
        info = b.nip11()
        assert "GRASP-05" in info["supported_grasps"] and "read-only" in info["curation"]
        to_b = RelayClient(b.ws_url)
        sent = time.monotonic()
        ok = to_b.publish(announcement)
        assert ok[2] is True and ok[3].startswith("purgatory:"), ok  # lists only A: archived
        assert to_b.publish(state)[2] is True
        wait_for(
            lambda: len(to_b.req("b", {"ids": [state.id, announcement.id]})) == 2,
            timeout=20,
            message=lambda: f"B serving the state; log:\n{b.log}",
        )
        print(f"{name}: archived from A and served in {time.monotonic() - sent:.2f} s")
        to_b.close()
        clone = tmp_path / f"{name}-clone"
        git("clone", "--quiet", f"{b.http_url}/{npub}/{D}.git", clone)
        assert git("-C", clone, "rev-parse", "HEAD").strip() == tip
        assert_push_refused(b, work, npub)
        return b
    except BaseException:
        b.stop()
        raise


def assert_push_refused(b: RelayProcess, work: RepoBuilder, npub: str) -> None:
    work.commit(parents=[git("rev-parse", "main", git_dir=work.path).strip()], branch="main")
    refused = push(work.path, f"{b.http_url}/{npub}/{D}.git")
    assert refused.returncode != 0
    assert "read-only archive on this relay (GRASP-05)" in refused.stderr, refused.stderr
    assert "remote:" in refused.stderr, refused.stderr


def test_s17_5_archive_all_copies_serves_and_refuses_pushes(tmp_path, origin):
    b = archive_and_check(tmp_path, "b-all", origin, "--archive-all")
    b.stop()


def test_s17_5_archive_by_npub_and_read_only_after_a_restart(tmp_path, origin):
    owner, announcement, *_, work = origin
    npub = npub_encode(owner.pubkey)
    b = archive_and_check(tmp_path, "b-npub", origin, "--archive", npub)
    b.stop()
    again = RelayProcess(tmp_path / "b-npub", "--allow-private-fetch", "--archive", npub).start()
    try:
        assert_push_refused(again, work, npub)  # derived from config + stored announcement
        clone = tmp_path / "after-restart"
        git("clone", "--quiet", f"{again.http_url}/{npub}/{D}.git", clone)
    finally:
        again.stop()


def test_s17_5_without_a_matching_rule_the_announcement_is_refused(tmp_path, origin):
    owner, announcement, *_ = origin
    with RelayProcess(tmp_path / "c", "--archive", "someone-else") as c:
        to_c = RelayClient(c.ws_url)
        try:
            ok = to_c.publish(announcement)
        finally:
            to_c.close()
    assert ok[2] is False and ok[3].startswith("blocked: announcement does not list this relay")
