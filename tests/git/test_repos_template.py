"""Cheap empty repositories for held announcements (GRASP-01 :34, S1.1; P7 of issue 16).

A held announcement's bare repository must exist; it is laid out as HEAD, config, objects/ and
refs/ only, HEAD and config hard-linked from a prepared template, nothing fsynced. These tests
check that git and dulwich treat it as a real bare repository, that the shared inodes never
leak one repository's change into another, and the fallback when the template cannot be used.
"""

import os
import subprocess

from dulwich.repo import Repo

from grasp.git import align_refs, ensure_bare_repo, list_refs, missing_oids
from grasp.git.pack_ingest import PackSpool, ingest_pack
from tests.support.gitrepo import RepoBuilder, assert_fsck_clean, git, symbolic_head

NPUB = "npub1" + "q" * 58
TEMPLATE = ".empty-repo-template"


def test_s1_1_empty_repository_is_minimal_and_a_bare_repository_for_git(tmp_path):
    repo = ensure_bare_repo(tmp_path, NPUB, "held")
    assert sorted(p.name for p in repo.iterdir()) == ["HEAD", "config", "objects", "refs"]
    assert git("rev-parse", "--is-bare-repository", git_dir=repo).strip() == "true"
    assert symbolic_head(repo) == "refs/heads/master"  # what dulwich's init_bare wrote
    assert list_refs(repo) == {}
    assert_fsck_clean(repo)
    template = tmp_path / "repos" / TEMPLATE
    assert os.path.samefile(repo / "HEAD", template / "HEAD")
    assert os.path.samefile(repo / "config", template / "config")


def test_s1_1_fetched_pack_and_refs_land_in_an_empty_repository(tmp_path):
    """objects/pack/ and refs/heads/ do not exist yet: the first pack and ref create them."""
    source = RepoBuilder.create(tmp_path / "source.git")
    commit = source.commit(branch="main")
    repo = ensure_bare_repo(tmp_path, NPUB, "held")
    assert missing_oids(repo, [commit]) == {commit}
    pack = subprocess.run(
        ["git", "--git-dir", str(source.path), "pack-objects", "--stdout", "--revs"],
        input=b"main\n",
        capture_output=True,
        check=True,
    ).stdout
    spool = PackSpool(tmp_path)
    spool.write(pack)
    assert ingest_pack(repo, spool) is not None
    assert missing_oids(repo, [commit]) == set()
    align_refs(repo, {"refs/heads/main": commit}, head="refs/heads/main")
    assert list_refs(repo) == {"refs/heads/main": commit}
    assert_fsck_clean(repo)


def test_s1_1_head_of_one_repository_changes_without_touching_the_others(tmp_path):
    first = ensure_bare_repo(tmp_path, NPUB, "one")
    second = ensure_bare_repo(tmp_path, NPUB, "two")
    assert os.path.samefile(first / "HEAD", second / "HEAD")
    with Repo(str(first)) as repo:  # dulwich writes HEAD.lock and renames it over the link
        repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
    git("config", "core.logallrefupdates", "false", git_dir=second)  # git: config.lock too
    assert symbolic_head(first) == "refs/heads/main"
    assert symbolic_head(second) == "refs/heads/master"
    assert "logallrefupdates" not in (first / "config").read_text()
    assert "logallrefupdates" in (second / "config").read_text()
    template = tmp_path / "repos" / TEMPLATE
    assert (template / "HEAD").read_bytes() == b"ref: refs/heads/master\n"
    assert "logallrefupdates" not in (template / "config").read_text()


def test_s1_1_a_broken_template_is_replaced_and_the_repository_still_made(tmp_path):
    template = tmp_path / "repos" / TEMPLATE
    template.mkdir(parents=True)  # no files: every link fails
    repo = ensure_bare_repo(tmp_path, NPUB, "held")
    assert git("rev-parse", "--is-bare-repository", git_dir=repo).strip() == "true"
    assert os.path.samefile(repo / "HEAD", template / "HEAD")  # the renewed template
    assert (template / "HEAD").read_bytes() == b"ref: refs/heads/master\n"


def test_s1_1_files_are_written_when_no_template_can_be_made(tmp_path, monkeypatch):
    from grasp.git import repos

    def refuse(*args, **kwargs):
        raise OSError(31, "Too many links")  # EMLINK, as ext4 says after ~65,000 links

    monkeypatch.setattr(repos.os, "link", refuse)
    repo = ensure_bare_repo(tmp_path, NPUB, "held")
    assert git("rev-parse", "--is-bare-repository", git_dir=repo).strip() == "true"
    assert (repo / "HEAD").read_bytes() == b"ref: refs/heads/master\n"
    assert os.stat(repo / "HEAD").st_nlink == 1
    assert sorted(p.name for p in (tmp_path / "repos").iterdir()) == [TEMPLATE, NPUB]
