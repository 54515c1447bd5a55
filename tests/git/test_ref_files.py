"""align_refs' one ref transaction (grasp.git.ref_files): S8.2 (refs equal the state exactly),
S8.4 (never at an absent object), compare-and-swap and all-or-nothing against other writers."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from grasp.git import RefConflictError, align_refs, copy_objects, list_refs
from grasp.git.ref_files import STALE_LOCK_SECS, read_aligned
from tests.git.conftest import Source
from tests.support.gitrepo import (
    RepoBuilder,
    assert_fsck_clean,
    for_each_ref,
    git,
    init_bare,
    symbolic_head,
)


def state_repo(tmp_path: Path, source: Source) -> Path:
    repo = init_bare(tmp_path / "owner.git")
    copy_objects(source.path, repo, [source.main[-1], source.side[-1], source.tag_v1])
    return repo


def lock_files(repo: Path) -> list[str]:
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*.lock"))


def test_s8_2_a_locked_ref_fails_the_whole_alignment_and_changes_nothing(
    tmp_path: Path, source: Source
):
    """Another writer holds refs/heads/side's lock: no ref of the state is written, not even
    the ones before it (one dulwich call per ref wrote those), and our own locks are gone."""
    repo = state_repo(tmp_path, source)
    builder = RepoBuilder(repo)
    builder.set_ref("refs/heads/main", source.main[0])
    builder.set_ref("refs/heads/old", source.main[1])
    before = for_each_ref(repo)
    (repo / "refs" / "heads" / "side.lock").write_bytes(b"")  # the other writer's lock
    state = {
        "refs/heads/a-first": source.main[2],
        "refs/heads/main": source.main[-1],
        "refs/heads/side": source.side[-1],
    }
    with pytest.raises(RefConflictError, match="locked"):
        align_refs(repo, state, "refs/heads/main")
    assert for_each_ref(repo) == before
    assert lock_files(repo) == ["refs/heads/side.lock"], "only the other writer's lock is left"
    (repo / "refs" / "heads" / "side.lock").unlink()  # the other writer is done
    assert align_refs(repo, state, "refs/heads/main").deleted == ("refs/heads/old",)
    assert for_each_ref(repo) == state
    assert lock_files(repo) == []
    assert_fsck_clean(repo)


def test_a_lock_left_by_a_dead_writer_is_taken_over_and_the_release_goes_on(
    tmp_path: Path, source: Source, caplog
):
    """A writer killed between taking a ref's lock and renaming it leaves the lock for good;
    once it is older than STALE_LOCK_SECS (no live writer holds one that long) the alignment
    removes it, says so, and the refs equal the state (S8.2). A younger lock still conflicts
    (the test above)."""
    repo = state_repo(tmp_path, source)
    RepoBuilder(repo).set_ref("refs/heads/main", source.main[0])
    lock = repo / "refs" / "heads" / "main.lock"
    lock.write_bytes(source.main[1].encode() + b"\n")  # half a transaction, never renamed
    old = time.time() - STALE_LOCK_SECS - 60
    os.utime(lock, (old, old))
    state = {"refs/heads/main": source.main[-1], "refs/heads/side": source.side[-1]}
    with caplog.at_level(logging.WARNING, logger="grasp.git.ref_files"):
        align_refs(repo, state, "refs/heads/main")
    assert for_each_ref(repo) == state
    assert lock_files(repo) == []
    assert any(
        "main.lock" in r.getMessage() and "interrupted" in r.getMessage() for r in caplog.records
    )
    assert_fsck_clean(repo)


def test_s8_2_packed_refs_are_read_updated_and_kept(tmp_path: Path, source: Source):
    """A packed branch is updated by a loose ref (git's precedence), packed refs of other
    namespaces and the annotated tag's peeled value survive, and a second pass sees no change."""
    repo = state_repo(tmp_path, source)
    builder = RepoBuilder(repo)
    builder.set_ref("refs/heads/main", source.main[0])
    builder.set_ref("refs/tags/v1", source.tag_v1)
    builder.set_ref("refs/nostr/" + "b" * 64, source.main[1])
    git("pack-refs", "--all", git_dir=repo)
    assert not (repo / "refs" / "heads" / "main").exists()
    state = {"refs/heads/main": source.main[-1], "refs/tags/v1": source.tag_v1}
    result = align_refs(repo, state, "refs/heads/main")
    assert result.updated == ("refs/heads/main",) and not result.created + result.deleted
    assert for_each_ref(repo) == {**state, "refs/nostr/" + "b" * 64: source.main[1]}
    peeled = git("show-ref", "--dereference", "refs/tags/v1", git_dir=repo)
    assert "refs/tags/v1^{}" in peeled
    assert not align_refs(repo, state, "refs/heads/main").changed
    assert_fsck_clean(repo)


def test_s8_2_deleting_a_nested_branch_frees_its_directory_for_a_branch(
    tmp_path: Path, source: Source
):
    repo = state_repo(tmp_path, source)
    RepoBuilder(repo).set_ref("refs/heads/feature/x", source.main[0])
    assert align_refs(repo, {}, None).deleted == ("refs/heads/feature/x",)
    assert not (repo / "refs" / "heads" / "feature").exists()
    assert align_refs(repo, {"refs/heads/feature": source.main[1]}, None).created == (
        "refs/heads/feature",
    )
    assert for_each_ref(repo) == {"refs/heads/feature": source.main[1]}
    assert_fsck_clean(repo)


def test_s8_2_a_loose_branch_replaced_by_a_branch_below_its_name(tmp_path: Path, source: Source):
    """refs/heads/a (a file) gives way to refs/heads/a/b (a file in a directory a): the
    transaction leaves that to dulwich, one ref at a time, deletions first."""
    repo = state_repo(tmp_path, source)
    RepoBuilder(repo).set_ref("refs/heads/a", source.main[0])
    result = align_refs(repo, {"refs/heads/a/b": source.main[1]}, None)
    assert (result.created, result.deleted) == (("refs/heads/a/b",), ("refs/heads/a",))
    assert for_each_ref(repo) == {"refs/heads/a/b": source.main[1]}
    assert_fsck_clean(repo)


def test_the_reader_leaves_symbolic_refs_to_dulwich_and_skips_lock_files(
    tmp_path: Path, source: Source
):
    repo = state_repo(tmp_path, source)
    RepoBuilder(repo).set_ref("refs/heads/main", source.main[0])
    (repo / "refs" / "heads" / "stale.lock").write_bytes(source.main[1].encode() + b"\n")
    read = read_aligned(str(repo))
    assert read is not None and read.refs == {"refs/heads/main": source.main[0]}
    git("symbolic-ref", "refs/heads/alias", "refs/heads/main", git_dir=repo)
    assert read_aligned(str(repo)) is None


def test_s8_2_a_new_repository_without_refs_heads_gets_its_branch_and_head(
    tmp_path: Path, source: Source
):
    repo = state_repo(tmp_path, source)
    (repo / "refs" / "heads").rmdir()  # as the empty-repository pool lays them out
    result = align_refs(repo, {"refs/heads/trunk": source.main[-1]}, "refs/heads/trunk")
    assert result.created == ("refs/heads/trunk",) and result.head_set
    assert symbolic_head(repo) == "refs/heads/trunk"
    assert for_each_ref(repo) == {"refs/heads/trunk": source.main[-1]}
    assert lock_files(repo) == []
    assert_fsck_clean(repo)


def test_s8_2_a_new_repositorys_first_refs_are_one_packed_refs_file(tmp_path: Path, source: Source):
    """No refs/heads directory to make, one file for every ref; git and dulwich read it, the
    annotated tag still peels, and later changes go over it (an update, a deletion)."""
    repo = state_repo(tmp_path, source)
    (repo / "refs" / "heads").rmdir()  # as the empty-repository pool lays them out
    (repo / "refs" / "tags").rmdir()
    state = {
        "refs/heads/main": source.main[-1],
        "refs/heads/side": source.side[-1],
        "refs/tags/v1": source.tag_v1,
    }
    result = align_refs(repo, state, "refs/heads/side")
    assert result.created == tuple(sorted(state)) and result.head_set
    assert not (repo / "refs" / "heads").exists(), "no directory made for the first refs"
    assert (repo / "packed-refs").read_text().splitlines()[0] == "# pack-refs with: sorted "
    assert for_each_ref(repo) == state
    assert list_refs(repo) == state, "dulwich reads it too"
    assert "refs/tags/v1^{}" in git("show-ref", "--dereference", "refs/tags/v1", git_dir=repo)
    assert symbolic_head(repo) == "refs/heads/side"
    assert_fsck_clean(repo)
    assert not align_refs(repo, state, "refs/heads/side").changed
    moved = {"refs/heads/main": source.main[0], "refs/tags/v1": source.tag_v1}
    result = align_refs(repo, moved, "refs/heads/main")
    assert (result.updated, result.deleted) == (("refs/heads/main",), ("refs/heads/side",))
    assert for_each_ref(repo) == moved
    assert lock_files(repo) == []
    assert_fsck_clean(repo)


def test_a_locked_packed_refs_file_leaves_the_first_refs_to_loose_files(
    tmp_path: Path, source: Source
):
    """A packed-refs.lock left by a crash (or held by git pack-refs) must not block a release."""
    repo = state_repo(tmp_path, source)
    (repo / "packed-refs.lock").write_bytes(b"")
    state = {"refs/heads/main": source.main[-1]}
    assert align_refs(repo, state, None).created == ("refs/heads/main",)
    assert (repo / "refs" / "heads" / "main").read_text() == source.main[-1] + "\n"
    assert not (repo / "packed-refs").exists()
    assert for_each_ref(repo) == state


def test_a_ref_appearing_before_the_first_refs_are_packed_wins(
    tmp_path: Path, source: Source, monkeypatch: pytest.MonkeyPatch
):
    """A push creating the branch between our read and our write: nothing of ours is written."""
    import grasp.git.refs as refs_module

    repo = state_repo(tmp_path, source)
    read_aligned_now = refs_module.read_aligned

    def read_then_race(repo_dir):
        snapshot = read_aligned_now(repo_dir)
        git("update-ref", "refs/heads/main", source.main[1], git_dir=repo)  # the "push"
        return snapshot

    monkeypatch.setattr(refs_module, "read_aligned", read_then_race)
    with pytest.raises(RefConflictError):
        align_refs(repo, {"refs/heads/main": source.main[-1], "refs/tags/v1": source.tag_v1}, None)
    monkeypatch.undo()
    assert for_each_ref(repo) == {"refs/heads/main": source.main[1]}
    assert not (repo / "packed-refs").exists() and lock_files(repo) == []
