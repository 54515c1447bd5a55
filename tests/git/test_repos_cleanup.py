"""Leftovers of a killed process are removed before the relay serves (S7.2: no partial pack)."""

from grasp.git import ensure_bare_repo, remove_interrupted_work
from grasp.git.pack_ingest import STAGING_PREFIX, TEMP_PREFIX
from tests.support.gitrepo import RepoBuilder, assert_fsck_clean, for_each_ref

NPUB = "npub1" + "q" * 58


def test_staging_and_half_initialised_repos_are_removed_and_nothing_else(tmp_path):
    repo = ensure_bare_repo(tmp_path, NPUB, "kept")
    commit = RepoBuilder(repo).commit(branch="main")
    staging = repo / "objects" / f"{STAGING_PREFIX}abc123"
    (staging / "pack").mkdir(parents=True)
    (staging / "pack" / "pack-x.pack").write_bytes(b"PACK half written")
    half_init = tmp_path / "repos" / NPUB / ".init-zz9"
    (half_init / "objects").mkdir(parents=True)
    removed = remove_interrupted_work(tmp_path)
    assert sorted(removed) == sorted([staging, half_init])
    assert not staging.exists() and not half_init.exists()
    assert for_each_ref(repo) == {"refs/heads/main": commit}
    assert_fsck_clean(repo)
    assert remove_interrupted_work(tmp_path) == []


def test_half_made_grasp06_repositories_are_removed_too(tmp_path):
    """S16.1: ``<data>/prs/`` is created the same atomic way; a SIGKILL can leave the same."""
    from grasp.git import create_bare_repo

    empty = create_bare_repo(tmp_path / "prs" / ".empty.git")
    kept = create_bare_repo(tmp_path / "prs" / NPUB / "kept.git")
    leftovers = [tmp_path / "prs" / ".init-a1", tmp_path / "prs" / NPUB / ".init-b2"]
    for path in leftovers:
        (path / "objects").mkdir(parents=True)
    assert sorted(remove_interrupted_work(tmp_path)) == sorted(leftovers)
    assert empty.is_dir() and kept.is_dir()


def test_s19_2_start_up_cleanup_leaves_a_live_nodes_work_alone(tmp_path):
    """In a cluster every node shares the data directory: a starting node removes what dead
    processes left, never what a live node is building right now (grasp/git/workdirs.py)."""
    import os
    import socket
    import subprocess
    import sys

    from grasp.git.workdirs import STALE_SECS, make_workdir

    host = socket.gethostname()
    repo = ensure_bare_repo(tmp_path, NPUB, "shared")
    objects, owner_dir = repo / "objects", tmp_path / "repos" / NPUB
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        keep = [
            objects / f"{STAGING_PREFIX}{live.pid}@{host}-abcd1234",  # a live node indexing
            owner_dir / f".init-{live.pid}@{host}-abcd1234",  # a live node initialising
            objects / f"{STAGING_PREFIX}77@another-host-abcd1234",  # elsewhere, recent
        ]
        remove = [
            objects / f"{STAGING_PREFIX}{dead.pid}@{host}-abcd1234",  # its process is gone
            owner_dir / f".init-{dead.pid}@{host}-efgh5678",
            objects / f"{STAGING_PREFIX}78@another-host-abcd1234",  # elsewhere, stale
        ]
        pack_dir = objects / "pack"
        keep_files = [pack_dir / f"{TEMP_PREFIX}{live.pid}@{host}-abcd1234_pack"]
        remove_files = [  # a small pack's temporary files (grasp.git.pack_ingest)
            pack_dir / f"{TEMP_PREFIX}{dead.pid}@{host}-abcd1234_pack",
            pack_dir / f"{TEMP_PREFIX}{dead.pid}@{host}-abcd1234_idx",
        ]
        for path in keep + remove:
            path.mkdir(parents=True)
        pack_dir.mkdir(exist_ok=True)
        for path in keep_files + remove_files:
            path.write_bytes(b"PACK half written")
        stale = remove[-1]
        old = stale.stat().st_mtime - STALE_SECS - 60
        os.utime(stale, (old, old))
        remove += remove_files
        keep += keep_files
        assert sorted(remove_interrupted_work(tmp_path)) == sorted(remove)
        assert all(p.exists() for p in keep)
        assert not any(p.exists() for p in remove)
        mine = make_workdir(STAGING_PREFIX, objects)  # this process's own names carry it too
        assert mine.name.startswith(f"{STAGING_PREFIX}{os.getpid()}@{host}-")
    finally:
        live.kill()
        live.wait()
