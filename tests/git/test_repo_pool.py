"""Ready-made empty repositories (grasp/git/repo_pool.py; GRASP-01 :34, S1.1, P7 of issue 16).

A held announcement's repository must exist before its ``OK``; the pool makes it one rename.
These tests check that what the pool hands out is a real bare repository for git (push, clone,
fsck), that it is refilled in the background and made in place when none is ready, that an
entry that vanished or a repository made meanwhile is handled, and that a refill failure costs
one warning, not one per announcement. Real directories and the real git CLI throughout; the
refill runs synchronously (``spawn=run_now``) except in the test of gevent's thread pool.
"""

import logging
import os
import subprocess
import sys

from grasp.git import list_refs, remove_interrupted_work, repo_path_for
from grasp.git.repo_pool import RETRY_SECS, EmptyRepoPool
from grasp.git.repos import INIT_PREFIX, TEMPLATE_NAME
from tests.support.gitrepo import RepoBuilder, assert_fsck_clean, for_each_ref, git, symbolic_head
from tests.support.wait import wait_for

NPUB = "npub1" + "q" * 58


def run_now(work):
    work()


def _pool(tmp_path, size=4, **kwargs):
    return EmptyRepoPool(tmp_path / "repos", size, spawn=kwargs.pop("spawn", run_now), **kwargs)


def _entries(tmp_path):
    return sorted(p.name for p in (tmp_path / "repos").glob(f"{INIT_PREFIX}*"))


def test_s1_1_a_pool_made_repository_takes_a_push_and_is_cloned_by_git(tmp_path):
    pool = _pool(tmp_path)
    pool.start()
    assert pool.ready == 4 and len(_entries(tmp_path)) == 4
    repo = pool.create(repo_path_for(tmp_path, NPUB, "held"))
    assert repo == tmp_path / "repos" / NPUB / "held.git"
    assert sorted(p.name for p in repo.iterdir()) == ["HEAD", "config", "objects", "refs"]
    assert git("rev-parse", "--is-bare-repository", git_dir=repo).strip() == "true"
    assert symbolic_head(repo) == "refs/heads/master"
    assert os.path.samefile(repo / "HEAD", tmp_path / "repos" / TEMPLATE_NAME / "HEAD")
    assert list_refs(repo) == {}
    work = RepoBuilder.create(tmp_path / "work.git")
    main = work.chain(3, branch="main")[-1]
    git("push", str(repo), "main:main", git_dir=work.path)
    assert for_each_ref(repo) == {"refs/heads/main": main}
    assert_fsck_clean(repo)
    subprocess.run(
        ["git", "clone", "--quiet", str(repo), str(tmp_path / "clone")], check=True, text=True
    )
    assert git("rev-parse", "origin/main", git_dir=tmp_path / "clone" / ".git").strip() == main


def test_s1_1_taken_entries_are_refilled_once_half_the_pool_is_used(tmp_path):
    pool = _pool(tmp_path, size=4)
    pool.start()
    made = [pool.create(repo_path_for(tmp_path, NPUB, "r0"))]
    assert pool.ready == 3  # above the low-water mark (half the pool): no refill yet
    made.append(pool.create(repo_path_for(tmp_path, NPUB, "r1")))
    assert pool.ready == 4  # half used: the refill ran (synchronously here) to full again
    assert len(_entries(tmp_path)) == 4
    for repo in made:
        assert git("rev-parse", "--is-bare-repository", git_dir=repo).strip() == "true"


def test_s1_1_with_none_ready_the_repository_is_made_in_place(tmp_path):
    pool = _pool(tmp_path, size=0)
    pool.start()
    repo = pool.create(repo_path_for(tmp_path, NPUB, "held"))
    assert git("rev-parse", "--is-bare-repository", git_dir=repo).strip() == "true"
    assert pool.ready == 0 and _entries(tmp_path) == []


def test_an_existing_repository_is_left_alone_and_keeps_the_entry(tmp_path):
    pool = _pool(tmp_path, size=2)
    pool.start()
    repo = pool.create(repo_path_for(tmp_path, NPUB, "kept"))
    commit = RepoBuilder(repo).commit(branch="main")
    ready = pool.ready
    assert pool.create(repo) == repo
    assert pool.ready == ready
    assert for_each_ref(repo) == {"refs/heads/main": commit}


def test_s19_2_an_entry_removed_under_the_pool_is_skipped(tmp_path):
    """Another node's start-up may remove entries older than an hour (workdirs.STALE_SECS)."""
    pool = _pool(tmp_path, size=2)
    pool.start()
    for name in _entries(tmp_path):
        subprocess.run(["rm", "-rf", str(tmp_path / "repos" / name)], check=True)
    repo = pool.create(repo_path_for(tmp_path, NPUB, "held"))
    assert git("rev-parse", "--is-bare-repository", git_dir=repo).strip() == "true"


def test_a_failed_refill_is_logged_once_and_retried_after_a_while(tmp_path, caplog):
    now = [0.0]
    (tmp_path / "repos").write_text("not a directory")  # every mkdir below it fails
    pool = _pool(tmp_path, size=2, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="grasp.git.repo_pool"):
        pool.start()  # fails in the "thread"; reported by the hub's next call
        pool.start()
        pool.start()
    warnings = [r for r in caplog.records if "could not prepare" in r.getMessage()]
    assert len(warnings) == 1
    (tmp_path / "repos").unlink()
    pool.start()
    assert pool.ready == 0  # still inside the back-off
    now[0] = RETRY_SECS + 1
    pool.start()
    assert pool.ready == 2


def test_close_removes_what_is_ready_and_stops_refilling(tmp_path):
    pool = _pool(tmp_path, size=3)
    pool.start()
    assert len(_entries(tmp_path)) == 3
    pool.close()
    assert _entries(tmp_path) == [] and pool.ready == 0
    repo = pool.create(repo_path_for(tmp_path, NPUB, "late"))  # still works, made in place
    assert git("rev-parse", "--is-bare-repository", git_dir=repo).strip() == "true"
    assert _entries(tmp_path) == []


def test_the_refill_runs_in_gevent_s_thread_pool(tmp_path):
    pool = EmptyRepoPool(tmp_path / "repos", 8)
    pool.start()
    wait_for(lambda: pool.ready == 8, timeout=20, message="the pool filled by its thread")
    repo = pool.create(repo_path_for(tmp_path, NPUB, "held"))
    assert git("rev-parse", "--is-bare-repository", git_dir=repo).strip() == "true"
    pool.close()
    assert _entries(tmp_path) == []


def test_entries_of_a_process_that_died_are_removed_at_the_next_start(tmp_path):
    """A SIGKILL leaves the ready entries behind; ``remove_interrupted_work`` knows them."""
    code = (
        "import sys; from pathlib import Path; from grasp.git.repo_pool import EmptyRepoPool;"
        "p = EmptyRepoPool(Path(sys.argv[1]), 3, spawn=lambda w: w()); p.start();"
        "import os; os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "repos")], check=True)
    leftovers = [tmp_path / "repos" / name for name in _entries(tmp_path)]
    assert len(leftovers) == 3
    kept = _pool(tmp_path, size=0).create(repo_path_for(tmp_path, NPUB, "kept"))
    assert sorted(remove_interrupted_work(tmp_path)) == sorted(leftovers)
    assert _entries(tmp_path) == [] and kept.is_dir()
