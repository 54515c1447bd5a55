"""Local operations: object existence, copies between repos, ref alignment (S8.2-S8.4), layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich.errors import NotGitRepository

from grasp.git import (
    AbsentObjectError,
    AlignResult,
    RefConflictError,
    align_refs,
    copy_objects,
    ensure_bare_repo,
    list_refs,
    missing_oids,
    read_head,
    repo_path_for,
    set_nostr_ref,
    validate_identifier,
)
from grasp.git.objects import packed_type
from tests.git.conftest import Source
from tests.support.gitrepo import (
    RepoBuilder,
    assert_fsck_clean,
    for_each_ref,
    git,
    has_object,
    init_bare,
    objects_listing,
    symbolic_head,
)

NPUB = "npub1" + "q" * 58
ABSENT = "4" * 40


def test_s2_1_missing_oids_checks_objects_of_any_type(source: Source, target: Path):
    assert missing_oids(source.path, [source.main[0], source.tag_v1, source.dangling, ABSENT]) == {
        ABSENT
    }
    tree = RepoBuilder(source.path)._tree({"x": "y"})
    assert missing_oids(source.path, [tree]) == set()
    assert missing_oids(target, [source.main[0]]) == {source.main[0]}
    assert missing_oids(target, []) == set()


def test_missing_oids_rejects_malformed_input(source: Source):
    with pytest.raises(ValueError):
        missing_oids(source.path, ["xyz"])
    with pytest.raises(TypeError):
        missing_oids(source.path, source.main[0])  # a single string is not a collection of OIDs


def test_s8_2_copy_objects_copies_history_including_unreferenced_objects(
    source: Source, target: Path
):
    assert copy_objects(source.path, target, [source.dangling, source.tag_v1]) == 2
    for oid in [source.dangling, *source.main, source.tag_v1]:
        assert has_object(target, oid)
    assert not has_object(target, source.side[-1])
    assert for_each_ref(target) == {}, "copies create no refs"
    assert_fsck_clean(target)


def test_copy_objects_does_nothing_when_everything_is_present(source: Source, target: Path):
    copy_objects(source.path, target, [source.main[-1]])
    before = objects_listing(target)
    assert copy_objects(source.path, target, [source.main[2], source.main[-1]]) == 0
    assert objects_listing(target) == before


def test_copy_objects_refuses_oids_the_source_lacks(source: Source, target: Path):
    before = objects_listing(target)
    with pytest.raises(AbsentObjectError) as info:
        copy_objects(source.path, target, [source.main[-1], ABSENT])
    assert info.value.oids == [ABSENT]
    assert objects_listing(target) == before


def state_repo(tmp_path: Path, source: Source) -> Path:
    repo = init_bare(tmp_path / "owner.git")
    copy_objects(
        source.path, repo, [source.main[-1], source.side[-1], source.tag_v1, source.dangling]
    )
    return repo


def test_s8_2_align_creates_updates_and_deletes_heads_and_tags(tmp_path: Path, source: Source):
    repo = state_repo(tmp_path, source)
    builder = RepoBuilder(repo)
    builder.set_ref("refs/heads/main", source.main[0])  # will move
    builder.set_ref("refs/heads/old", source.main[1])  # not in the state: deleted
    builder.set_ref("refs/tags/stale", source.main[1])  # not in the state: deleted
    builder.set_ref("refs/nostr/" + "b" * 64, source.main[2])  # other namespace: untouched
    git("symbolic-ref", "HEAD", "refs/heads/old", git_dir=repo)
    state = {
        "refs/heads/main": source.main[-1],
        "refs/heads/side": source.side[-1],
        "refs/heads/feature/x": source.dangling,
        "refs/tags/v1": source.tag_v1,  # an annotated tag object
    }
    result = align_refs(repo, state, "refs/heads/main")
    assert result == AlignResult(
        created=("refs/heads/feature/x", "refs/heads/side", "refs/tags/v1"),
        updated=("refs/heads/main",),
        deleted=("refs/heads/old", "refs/tags/stale"),
        head_set=True,
    )
    assert for_each_ref(repo) == {**state, "refs/nostr/" + "b" * 64: source.main[2]}
    assert symbolic_head(repo) == "refs/heads/main"
    assert not (repo / "logs").exists(), "no reflogs in a bare repository"
    assert_fsck_clean(repo)


@pytest.mark.parametrize("path", ["direct", "dulwich"])
def test_align_reports_a_concurrent_ref_change_instead_of_overwriting_it(
    tmp_path: Path, source: Source, monkeypatch: pytest.MonkeyPatch, path: str
):
    """A push moving the branch between our read and our write wins; we raise. Both ways of
    writing: the one ref transaction (grasp.git.ref_files) and dulwich's (its fallback)."""
    repo = state_repo(tmp_path, source)
    RepoBuilder(repo).set_ref("refs/heads/main", source.main[0])
    from dulwich.refs import DiskRefsContainer

    import grasp.git.refs as refs_module

    def push():
        git("update-ref", "refs/heads/main", source.main[1], git_dir=repo)

    if path == "direct":
        read_aligned = refs_module.read_aligned

        def read_then_race(repo_dir):
            snapshot = read_aligned(repo_dir)
            push()
            return snapshot

        monkeypatch.setattr(refs_module, "read_aligned", read_then_race)
    else:
        read = DiskRefsContainer.as_dict

        def as_dict_then_race(self, base=None):
            snapshot = read(self, base)
            push()
            return snapshot

        monkeypatch.setattr(refs_module, "read_aligned", lambda repo_dir: None)
        monkeypatch.setattr(DiskRefsContainer, "as_dict", as_dict_then_race)
    with pytest.raises(RefConflictError):
        align_refs(repo, {"refs/heads/main": source.main[-1]}, None)
    monkeypatch.undo()
    assert for_each_ref(repo) == {"refs/heads/main": source.main[1]}, (
        "the concurrent write survived"
    )


def test_s8_2_align_is_idempotent(tmp_path: Path, source: Source):
    repo = state_repo(tmp_path, source)
    state = {"refs/heads/main": source.main[-1], "refs/tags/v1": source.tag_v1}
    align_refs(repo, state, "refs/heads/main")
    again = align_refs(repo, state, "refs/heads/main")
    assert not again.changed


def test_s8_2_align_handles_packed_refs_and_directory_file_conflicts(
    tmp_path: Path, source: Source
):
    repo = state_repo(tmp_path, source)
    builder = RepoBuilder(repo)
    builder.set_ref("refs/heads/a", source.main[0])
    builder.set_ref("refs/tags/packed", source.main[0])
    git("pack-refs", "--all", git_dir=repo)
    result = align_refs(repo, {"refs/heads/a/b": source.main[1]}, None)
    assert result.deleted == ("refs/heads/a", "refs/tags/packed")
    assert for_each_ref(repo) == {"refs/heads/a/b": source.main[1]}
    assert_fsck_clean(repo)


def test_s8_2_empty_state_deletes_every_head_and_tag(tmp_path: Path, source: Source):
    repo = state_repo(tmp_path, source)
    RepoBuilder(repo).set_ref("refs/heads/main", source.main[0])
    assert align_refs(repo, {}, None).deleted == ("refs/heads/main",)
    assert for_each_ref(repo) == {}


def test_s8_4_align_never_points_a_ref_at_an_absent_object(tmp_path: Path, source: Source):
    repo = state_repo(tmp_path, source)
    RepoBuilder(repo).set_ref("refs/heads/main", source.main[0])
    before = for_each_ref(repo)
    with pytest.raises(AbsentObjectError) as info:
        align_refs(
            repo, {"refs/heads/main": source.main[-1], "refs/heads/new": ABSENT}, "refs/heads/main"
        )
    assert info.value.oids == [ABSENT]
    assert for_each_ref(repo) == before, "nothing was written, not even the valid part"
    assert_fsck_clean(repo)


@pytest.mark.parametrize(
    "refs",
    [
        {"refs/nostr/abc": "0" * 40},
        {"HEAD": "0" * 40},
        {"refs/heads/bad..name": "0" * 40},
        {"refs/tags/v1^{}": "0" * 40},
        {"refs/heads/main": "ref: refs/heads/other"},
        {"refs/heads/main": "ABCDEF" * 6 + "ABCD"},
    ],
)
def test_align_refuses_malformed_refs_before_writing(
    tmp_path: Path, source: Source, refs: dict[str, str]
):
    repo = state_repo(tmp_path, source)
    with pytest.raises(ValueError):
        align_refs(repo, refs, None)
    assert for_each_ref(repo) == {}


@pytest.mark.parametrize(
    "head, why",
    [
        ("refs/heads/missing", "not in the state"),
        ("refs/tags/v1", "not a branch"),
        ("refs/heads/blob", "not a commit"),
    ],
)
def test_head_is_left_alone_unless_it_names_a_commit_branch_of_the_state(
    tmp_path: Path, source: Source, head, why
):
    repo = state_repo(tmp_path, source)
    blob = RepoBuilder(repo).blob("not a commit")
    state = {
        "refs/heads/main": source.main[-1],
        "refs/heads/blob": blob,
        "refs/tags/v1": source.tag_v1,
    }
    result = align_refs(repo, state, head)
    assert result.head_set is False, why
    assert symbolic_head(repo) == "refs/heads/main", "init's default HEAD is unchanged"


def test_s8_2_head_moves_to_another_branch(tmp_path: Path, source: Source):
    repo = state_repo(tmp_path, source)
    state = {"refs/heads/main": source.main[-1], "refs/heads/side": source.side[-1]}
    assert align_refs(repo, state, "refs/heads/side").head_set
    assert read_head(repo) == "refs/heads/side" == symbolic_head(repo)
    assert not align_refs(repo, state, "refs/heads/side").head_set


def test_s8_3_nostr_ref_is_created_and_moved(tmp_path: Path, source: Source):
    repo = state_repo(tmp_path, source)
    event_id = "c" * 64
    assert set_nostr_ref(repo, event_id, source.side[-1]) is True
    assert set_nostr_ref(repo, event_id, source.side[-1]) is False
    assert set_nostr_ref(repo, event_id, source.main[-1]) is True
    assert list_refs(repo) == {f"refs/nostr/{event_id}": source.main[-1]}
    assert_fsck_clean(repo)


def test_s8_4_nostr_ref_refuses_absent_objects_and_bad_ids(tmp_path: Path, source: Source):
    repo = state_repo(tmp_path, source)
    with pytest.raises(AbsentObjectError):
        set_nostr_ref(repo, "c" * 64, ABSENT)
    for bad in ("c" * 63, "C" * 64, "../" + "c" * 61):
        with pytest.raises(ValueError):
            set_nostr_ref(repo, bad, source.main[0])
    assert list_refs(repo) == {}


def test_list_refs_matches_git(tmp_path: Path, source: Source):
    assert list_refs(source.path) == for_each_ref(source.path)


def test_s10_4_ensure_bare_repo_creates_once_at_the_layout_path(tmp_path: Path):
    path = ensure_bare_repo(tmp_path, NPUB, "my-repo")
    assert (
        path
        == tmp_path / "repos" / NPUB / "my-repo.git"
        == repo_path_for(tmp_path, NPUB, "my-repo")
    )
    assert_fsck_clean(path)
    marker = path / "description"
    marker.write_text("kept")
    assert ensure_bare_repo(tmp_path, NPUB, "my-repo") == path
    assert marker.read_text() == "kept", "an existing repository is not re-initialised"
    assert [p.name for p in path.parent.iterdir()] == ["my-repo.git"], (
        "no temporary directories left"
    )


@pytest.mark.parametrize("identifier", ["", ".", "..", "a/b", "a\\b", "a\0b", "x" * 252])
def test_s10_4_invalid_identifiers_are_refused(tmp_path: Path, identifier: str):
    with pytest.raises(ValueError):
        ensure_bare_repo(tmp_path, NPUB, identifier)
    with pytest.raises(ValueError):
        validate_identifier(identifier)
    assert not (tmp_path / "repos").exists()


@pytest.mark.parametrize("identifier", ["a", "...", "repo.git", "naïve", "with space", "x" * 251])
def test_unusual_but_valid_identifiers_are_accepted(tmp_path: Path, identifier: str):
    assert ensure_bare_repo(tmp_path, NPUB, identifier).name == identifier + ".git"


@pytest.mark.parametrize(
    "npub", ["", "npub1", "../etc", "npub1" + "b" * 58, "npub1" + "q" * 57, "nsec1" + "q" * 58]
)
def test_invalid_npubs_are_refused(tmp_path: Path, npub: str):
    with pytest.raises(ValueError):
        ensure_bare_repo(tmp_path, npub, "repo")


def test_s2_1_missing_oids_reads_loose_and_packed_objects_as_git_does(tmp_path: Path):
    """The direct reader (issue 16, P6) against the git CLI: loose objects, a pack, a pack
    added later (a cached index must not hide it), a repack that replaces the packs, and a
    repository with alternates (left to dulwich)."""
    repo = RepoBuilder.create(tmp_path / "r.git")
    first = repo.chain(3, branch="main")
    assert missing_oids(repo.path, [*first, ABSENT]) == {ABSENT}  # loose
    git("repack", "-a", "-d", "-q", git_dir=repo.path)
    assert not any((repo.path / "objects").glob("??/*")), "all packed now"
    assert missing_oids(repo.path, [*first, ABSENT]) == {ABSENT}  # packed, index now cached
    later = repo.chain(2, parent=first[-1], branch="main")
    assert missing_oids(repo.path, later) == set()  # loose beside a cached pack
    git("repack", "-d", "-q", git_dir=repo.path)  # a second pack
    assert missing_oids(repo.path, [*first, *later]) == set()
    git("repack", "-a", "-d", "-q", git_dir=repo.path)  # one new pack replaces both
    assert len(list((repo.path / "objects" / "pack").glob("*.idx"))) == 1
    assert missing_oids(repo.path, [*first, *later, ABSENT]) == {ABSENT}
    borrower = init_bare(tmp_path / "borrower.git")
    (borrower / "objects" / "info").mkdir(exist_ok=True)
    (borrower / "objects" / "info" / "alternates").write_text(f"{repo.path / 'objects'}\n")
    assert missing_oids(borrower, [later[-1], ABSENT]) == {ABSENT}
    with pytest.raises(NotGitRepository):
        missing_oids(tmp_path / "nowhere.git", [ABSENT])


def test_packed_type_reads_whole_objects_and_defers_the_rest(tmp_path: Path):
    """align_refs's HEAD check (S8.2) reads a packed object's type from its pack; loose
    objects and absent ones are left to dulwich (None)."""
    repo = RepoBuilder.create(tmp_path / "r.git")
    commit = repo.commit(branch="main")
    tree = git("rev-parse", f"{commit}^{{tree}}", git_dir=repo.path).strip()
    assert packed_type(repo.path, commit) is None, "loose"
    git("repack", "-a", "-d", "-q", git_dir=repo.path)
    assert (packed_type(repo.path, commit), packed_type(repo.path, tree)) == (1, 2)
    assert packed_type(repo.path, ABSENT) is None
    target = init_bare(tmp_path / "t.git", initial_branch="other")
    copy_objects(repo.path, target, [commit])
    git("repack", "-a", "-d", "-q", git_dir=target)
    assert align_refs(target, {"refs/heads/main": commit}, "refs/heads/main").head_set
    assert symbolic_head(target) == "refs/heads/main"
