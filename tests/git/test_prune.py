"""Pruning what only expired placeholders reached (S14.3), on real repositories built with the
git CLI: loose objects and whole packs go, everything a ref or a held event reaches stays, and
the repository is as it was before the placeholder came (objects listing, ``git fsck``)."""

from __future__ import annotations

import pytest

from grasp.git import delete_nostr_ref, prune_unreachable, set_nostr_ref
from tests.support.gitrepo import RepoBuilder, assert_fsck_clean, git, has_object, objects_listing

EVENT = "ab" * 32


@pytest.fixture
def repo(tmp_path):
    builder = RepoBuilder.create(tmp_path / "repo.git")
    builder.chain(3, branch="main")
    git("repack", "-a", "-d", "-q", git_dir=builder.path)  # a served repository: one pack
    return builder


def _placeholder(repo: RepoBuilder, on: str, files: int = 3) -> str:
    contents = {f"f{n}.bin": f"squatted {n}\n" * 1000 for n in range(files)}
    commit = repo.commit("squat", parents=[on], files=contents)
    set_nostr_ref(repo.path, EVENT, commit)
    return commit


def test_s14_3_loose_objects_of_an_expired_placeholder_are_pruned(repo):
    before = objects_listing(repo.path)
    main = git("rev-parse", "refs/heads/main", git_dir=repo.path).strip()
    commit = _placeholder(repo, main)
    assert delete_nostr_ref(repo.path, EVENT, commit)
    result = prune_unreachable(repo.path, [commit])
    assert result.objects == 5 and result.loose == 5 and result.packs == 0  # commit, tree, 3 blobs
    assert objects_listing(repo.path) == before
    assert_fsck_clean(repo.path)


def test_s14_3_what_a_held_event_waits_for_is_kept(repo):
    main = git("rev-parse", "refs/heads/main", git_dir=repo.path).strip()
    fetched = repo.commit("fetched for a held state", parents=[main])  # unreferenced (S7.3)
    commit = _placeholder(repo, fetched)
    delete_nostr_ref(repo.path, EVENT, commit)
    prune_unreachable(repo.path, [commit], keep=[fetched, "c" * 64])
    assert has_object(repo.path, fetched) and not has_object(repo.path, commit)
    tree = git("rev-parse", f"{fetched}^{{tree}}", git_dir=repo.path).strip()
    assert has_object(repo.path, tree)


def test_s14_3_a_placeholder_on_a_ref_costs_nothing(repo):
    main = git("rev-parse", "refs/heads/main", git_dir=repo.path).strip()
    before = objects_listing(repo.path)
    assert prune_unreachable(repo.path, [main]).objects == 0  # reachable from refs/heads/main
    assert prune_unreachable(repo.path, ["d" * 40]).objects == 0  # gone already: nothing to do
    assert objects_listing(repo.path) == before


def test_s14_3_a_pack_of_only_placeholder_objects_goes_a_mixed_one_stays(repo, tmp_path):
    main = git("rev-parse", "refs/heads/main", git_dir=repo.path).strip()
    before = objects_listing(repo.path)
    commit = _placeholder(repo, main)
    objects = git(
        "rev-list", "--objects", "--no-object-names", commit, "--not", main, git_dir=repo.path
    )
    git(
        "pack-objects",
        "-q",
        repo.path / "objects" / "pack" / "pack",
        git_dir=repo.path,
        input=objects.encode(),
    )
    git("prune-packed", git_dir=repo.path)  # as receive-pack keeps >= 100 objects: one pack
    delete_nostr_ref(repo.path, EVENT, commit)
    result = prune_unreachable(repo.path, [commit])
    assert result.packs == 1 and result.loose == 0
    assert objects_listing(repo.path) == before
    assert_fsck_clean(repo.path)


def test_s14_3_a_thin_packs_copied_bases_do_not_keep_its_pack_alive(repo):
    main = git("rev-parse", "refs/heads/main", git_dir=repo.path).strip()
    before = objects_listing(repo.path)
    commit = _placeholder(repo, main)
    # the placeholder's objects plus a copy of main's commit (kept elsewhere: the main pack)
    objects = (
        git("rev-list", "--objects", "--no-object-names", commit, "--not", main, git_dir=repo.path)
        + main
        + "\n"
    )
    git(
        "pack-objects",
        "-q",
        repo.path / "objects" / "pack" / "pack",
        git_dir=repo.path,
        input=objects.encode(),
    )
    git("prune-packed", git_dir=repo.path)
    delete_nostr_ref(repo.path, EVENT, commit)
    assert prune_unreachable(repo.path, [commit]).packs == 1
    assert objects_listing(repo.path) == before and has_object(repo.path, main)


def test_s14_3_a_pack_holding_objects_nothing_else_has_stays(repo):
    main = git("rev-parse", "refs/heads/main", git_dir=repo.path).strip()
    commit = _placeholder(repo, main)
    held = repo.commit("only in the mixed pack", parents=[main])
    objects = git(
        "rev-list", "--objects", "--no-object-names", commit, held, "--not", main, git_dir=repo.path
    )
    git(
        "pack-objects",
        "-q",
        repo.path / "objects" / "pack" / "pack",
        git_dir=repo.path,
        input=objects.encode(),
    )
    git("prune-packed", git_dir=repo.path)
    delete_nostr_ref(repo.path, EVENT, commit)
    assert prune_unreachable(repo.path, [commit], keep=[held]).packs == 0
    assert has_object(repo.path, held)


def test_s14_3_a_ref_moved_on_is_not_deleted(repo):
    main = git("rev-parse", "refs/heads/main", git_dir=repo.path).strip()
    commit = _placeholder(repo, main)
    set_nostr_ref(repo.path, EVENT, main)  # the signed PR event's commit took the ref
    assert not delete_nostr_ref(repo.path, EVENT, commit)
    assert git("rev-parse", f"refs/nostr/{EVENT}", git_dir=repo.path).strip() == main
    assert not delete_nostr_ref(repo.path, "cd" * 32, commit)  # no such ref
