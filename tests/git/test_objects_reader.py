"""missing_oids reads ``objects/`` itself (loose files, pack ``.idx`` bisection, parsed indexes
kept by inode/size/mtime): it must answer exactly as git does (S2.1) across the layouts a
repository goes through — loose, packed, several packs, repacked, with alternates."""

from __future__ import annotations

from pathlib import Path

from grasp.git import missing_oids
from grasp.git.objects import _missing_by_dulwich, presence
from tests.support.gitrepo import RepoBuilder, git, has_object

ABSENT = ["0" * 40, "f" * 40, "8" * 40]


def _all_objects(path: Path) -> list[str]:
    listing = git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)", git_dir=path)
    return listing.split()


def _agrees_with_git(path: Path, oids: list[str]) -> None:
    expected = {oid for oid in oids if not has_object(path, oid)}
    assert missing_oids(path, oids) == expected
    assert _missing_by_dulwich(path, oids) == expected


def test_s2_1_loose_and_packed_objects_are_found_and_absent_ones_reported(tmp_path: Path):
    repo = RepoBuilder.create(tmp_path / "r.git")
    packed = repo.chain(3, branch="main")
    git("repack", "-a", "-d", git_dir=repo.path)  # the first commits in one pack ...
    loose = repo.chain(2, branch="main")  # ... the later ones loose
    assert list((repo.path / "objects" / "pack").glob("*.idx"))
    everything = _all_objects(repo.path)
    assert set(packed + loose) <= set(everything)
    _agrees_with_git(repo.path, everything + ABSENT)
    assert missing_oids(repo.path, everything) == set()
    assert missing_oids(repo.path, ABSENT) == set(ABSENT)


def test_s2_1_several_packs_and_a_repack_are_seen_at_once(tmp_path: Path):
    """A parsed index is kept; a repack (new pack files, old ones deleted) must not leave a
    stale answer, and objects pruned away must be reported missing."""
    repo = RepoBuilder.create(tmp_path / "r.git")
    first = repo.chain(2, branch="main")
    git("repack", "-d", git_dir=repo.path)
    second = repo.chain(2, branch="side")
    git("repack", "-d", git_dir=repo.path)  # a second pack beside the first
    assert len(list((repo.path / "objects" / "pack").glob("*.idx"))) == 2
    _agrees_with_git(repo.path, first + second + ABSENT)
    repo.delete_ref("refs/heads/side")
    git("reflog", "expire", "--expire=now", "--all", git_dir=repo.path)
    git("repack", "-a", "-d", git_dir=repo.path)
    git("prune", "--expire=now", git_dir=repo.path)
    assert len(list((repo.path / "objects" / "pack").glob("*.idx"))) == 1
    assert missing_oids(repo.path, first + second) == set(second)
    _agrees_with_git(repo.path, first + second + ABSENT)


def test_s2_1_objects_reached_through_alternates_count_as_held(tmp_path: Path):
    source = RepoBuilder.create(tmp_path / "source.git")
    tips = source.chain(2, branch="main")
    git("repack", "-a", "-d", git_dir=source.path)
    borrower = RepoBuilder.create(tmp_path / "borrower.git")
    info = borrower.path / "objects" / "info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "alternates").write_text(f"{source.path / 'objects'}\n")
    assert missing_oids(borrower.path, tips + ABSENT) == set(ABSENT)


def test_s2_1_a_pack_without_its_index_is_not_counted(tmp_path: Path):
    """git ignores a pack until its .idx exists (an ingest in progress, S7.2); so must we."""
    repo = RepoBuilder.create(tmp_path / "r.git")
    tips = repo.chain(2, branch="main")
    git("repack", "-a", "-d", git_dir=repo.path)
    (idx,) = (repo.path / "objects" / "pack").glob("*.idx")
    moved = idx.rename(tmp_path / idx.name)
    assert missing_oids(repo.path, tips) == set(tips)
    moved.rename(idx)
    assert missing_oids(repo.path, tips) == set()


def test_s14_1_presence_answers_as_git_does_for_packed_loose_and_absent_ids(tmp_path: Path):
    """The per-ref test a streaming ref advertisement uses (``_NewTips``): packed and loose
    objects are held, absent and malformed ids are not; with alternates dulwich answers."""
    repo = RepoBuilder.create(tmp_path / "r.git")
    packed = repo.chain(2, branch="main")
    git("repack", "-a", "-d", git_dir=repo.path)
    loose = repo.chain(2, branch="main")
    has = presence(repo.path)
    assert has is not None
    for oid in _all_objects(repo.path) + ABSENT:
        assert has(oid.encode()) == has_object(repo.path, oid), oid
    assert all(has(oid.encode()) for oid in packed + loose)
    assert not has(b"not-a-hex-object-id-at-all-but-40-bytes!")
    (repo.path / "objects" / "info").mkdir(exist_ok=True)
    (repo.path / "objects" / "info" / "alternates").write_text(str(tmp_path) + "\n")
    assert presence(repo.path) is None
