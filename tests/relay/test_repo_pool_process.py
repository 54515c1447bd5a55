"""The relay process's empty-repository pool (grasp/git/repo_pool.py; GRASP-01 :34, S9.1, P7).

Over the wire: the repository of a held announcement exists when its ``OK`` arrives and git
takes a push into it; a graceful stop removes the ready entries; after a SIGKILL the next start
removes the dead process's entries while the held announcement and its repository survive.
"""

import signal
import subprocess

import pytest

from grasp.git.repos import INIT_PREFIX
from grasp.nostr.bech32 import npub_encode
from tests.support.gitrepo import RepoBuilder, for_each_ref, git
from tests.support.nip34 import Key
from tests.support.relay import RelayClient, RelayProcess
from tests.support.wait import wait_for

DOMAIN = "grasp.test"
HELD = "purgatory: won't be served until git data arrives"

pytestmark = pytest.mark.slow


def _start(data_dir):
    return RelayProcess(data_dir, "--domain", DOMAIN, "--sync-default-delay-secs", "600").start()


def _ours(owner, d):
    npub = npub_encode(owner.pubkey)
    return owner.announcement(
        d, clone=[f"http://{DOMAIN}/{npub}/{d}.git"], relays=[f"ws://{DOMAIN}"]
    )


def _publish(relay, event):
    client = RelayClient(relay.ws_url)
    try:
        return client.publish(event)[3]
    finally:
        client.close()


def _entries(data_dir):
    return sorted((data_dir / "repos").glob(f"{INIT_PREFIX}*"))


def test_grasp01_34_held_repository_exists_at_the_ok_and_takes_a_push(tmp_path):
    data = tmp_path / "data"
    relay = _start(data)
    try:
        wait_for(lambda: len(_entries(data)) >= 32, timeout=20, message="the pool filled")
        owner = Key()
        assert _publish(relay, _ours(owner, "pooled")) == HELD
        repo = data / "repos" / npub_encode(owner.pubkey) / "pooled.git"
        assert git("rev-parse", "--is-bare-repository", git_dir=repo).strip() == "true"
        work = RepoBuilder.create(tmp_path / "work.git")
        main = work.commit(branch="main")
        pushed = subprocess.run(
            ["git", "--git-dir", str(work.path), "push", str(repo), "main:main"],
            capture_output=True,
            text=True,
        )
        assert pushed.returncode == 0, pushed.stderr
        assert for_each_ref(repo) == {"refs/heads/main": main}
    finally:
        assert relay.stop() == 0
    assert _entries(data) == []  # a graceful stop leaves no ready entries behind


def test_s9_1_after_sigkill_the_next_start_removes_the_entries_and_keeps_the_held_repo(tmp_path):
    data = tmp_path / "data"
    relay = _start(data)
    owner = Key()
    try:
        announcement = _ours(owner, "kept")
        assert _publish(relay, announcement) == HELD
        wait_for(lambda: len(_entries(data)) >= 32, timeout=20, message="the pool filled")
        relay.send_signal(signal.SIGKILL)
        relay.wait(10)
    finally:
        relay.stop()
    dead = {p.name for p in _entries(data)}
    assert dead
    repo = data / "repos" / npub_encode(owner.pubkey) / "kept.git"
    again = _start(data)
    try:
        assert not dead & {p.name for p in _entries(data)}  # removed before serving
        assert git("rev-parse", "--is-bare-repository", git_dir=repo).strip() == "true"
        assert _publish(again, announcement) == "duplicate: in purgatory"
    finally:
        assert again.stop() == 0
