"""fetch_oids against real servers: what gets fetched, in how many requests (S7.1, S7.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grasp.git import FetchPolicy, fetch_oids, list_refs
from tests.git.conftest import PRIVATE_OK, QUICK, BigRepo, Source
from tests.support import gitchaos
from tests.support.gitrepo import assert_fsck_clean, has_object, init_bare
from tests.support.gitserver import GitServer, V0OnlyServer


def fetch(
    target: Path, url: str, oids: list[str], policy: FetchPolicy = PRIVATE_OK, **kw
) -> list[str]:
    return fetch_oids(target, url, oids, policy=policy, limits=QUICK, **kw)


def test_s7_1_advertised_tip_is_fetched_in_one_fetch_request(
    server: GitServer, source: Source, target: Path
):
    tip = source.main[-1]
    assert fetch(target, server.url("src.git"), [tip]) == [tip]
    assert has_object(target, source.main[0]), "history of the tip comes along"
    assert server.count(service="git-upload-pack", method="GET") == 1
    # protocol v2 with fixed wants: the fetch POST only, no ls-refs (two requests, as
    # ``git fetch <url> <oid>`` makes; P6 of issue 16)
    assert server.count(service="git-upload-pack", method="POST") == 1
    assert_fsck_clean(target)


def test_s7_3_fetched_objects_stay_unreferenced(server: GitServer, source: Source, target: Path):
    fetch(target, server.url("src.git"), [source.main[-1]])
    assert list_refs(target) == {}


@pytest.mark.parametrize("mode", ["none", "allowTip", "allowReachable", "allowAny"])
def test_s7_1_reachable_non_tip_is_fetched_by_id_whatever_the_server_config(
    server: GitServer, source: Source, target: Path, mode: str
):
    server.configure("src.git", mode)
    old = source.main[1]
    assert fetch(target, server.url("src.git"), [old]) == [old]
    assert not has_object(target, source.main[2]), "only the wanted history is fetched"


def test_s7_1_unreachable_object_is_fetched_with_protocol_v2(
    server: GitServer, source: Source, target: Path
):
    assert fetch(target, server.url("src.git"), [source.dangling]) == [source.dangling]
    assert_fsck_clean(target)


def test_s7_1_annotated_tag_object_is_fetched_by_id(
    server: GitServer, source: Source, target: Path
):
    assert fetch(target, server.url("src.git"), [source.tag_v1]) == [source.tag_v1]
    assert has_object(target, source.main[1]), "the tagged commit comes with the tag"


def test_s7_1_oids_the_server_lacks_are_dropped_and_the_rest_fetched(
    server: GitServer, source: Source, target: Path
):
    unknown = ["1" * 40, "2" * 40]
    wanted = [unknown[0], source.side[-1], unknown[1], source.dangling]
    assert fetch(target, server.url("src.git"), wanted) == [source.side[-1], source.dangling]
    assert not any(has_object(target, oid) for oid in unknown)
    # upload-pack names the first unknown want and stops, so: two refusals, then the fetch;
    # each round is one fetch POST in v2 (no ls-refs for fixed wants).  No fallback round
    # follows, since in v2 "not our ref" means the server does not have the object at all.
    assert server.count(service="git-upload-pack", method="POST") == 3
    assert not has_object(target, source.tag_v1), "no advertised tips were fetched"
    assert_fsck_clean(target)


def test_s7_1_v0_refusal_naming_oids_drops_them_then_falls_back_to_tips(
    source: Source, target: Path
):
    """In v0 "not our ref" may only mean "not advertised", so the tips are tried as well."""
    with GitServer(source.root, wrap=gitchaos.protocol_v0_only()) as server:
        old = source.main[1]
        assert fetch(target, server.url("src.git"), [source.dangling, old]) == [old]
        fetch_posts = server.count(service="git-upload-pack", method="POST")
    assert fetch_posts == 3, "refused fetch, retry without the named OID, fallback to the tips"
    assert has_object(target, source.side[-1]), "the fallback fetched the advertised tips"
    assert not has_object(target, source.dangling)


def test_failed_fallback_after_a_successful_round_returns_the_partial_result(
    source: Source, target: Path
):
    """The repository changed in the first rounds, so raising "nothing happened" would be a lie."""
    # requests: info/refs, refused fetch, info/refs, fetch (installs), then the fallback: 500
    chaos = gitchaos.chain(gitchaos.http_status(after=4), gitchaos.protocol_v0_only())
    with GitServer(source.root, wrap=chaos) as server:
        old = source.main[1]
        assert fetch(target, server.url("src.git"), [source.dangling, old]) == [old]
        assert server.requests[-1].status.startswith("500")
    assert not has_object(target, source.side[-1]), "the fallback failed"
    assert_fsck_clean(target)


def test_s7_1_nothing_the_server_has_gives_an_empty_result_not_an_error(
    server: GitServer, target: Path
):
    assert fetch(target, server.url("src.git"), ["3" * 40]) == []


def test_s7_1_present_oids_need_no_network(source: Source, target: Path):
    fetch_everything = [source.main[-1], source.side[-1], source.tag_v1, source.dangling]
    with GitServer(source.root) as first:
        assert sorted(fetch(target, first.url("src.git"), fetch_everything)) == sorted(
            fetch_everything
        )
    with GitServer(source.root) as second:
        assert fetch(target, second.url("src.git"), fetch_everything + [source.main[0]]) == []
        assert second.requests == []


def test_s7_1_result_is_in_input_order_without_duplicates(
    server: GitServer, source: Source, target: Path
):
    wanted = [source.side[-1], source.main[-1], source.side[-1]]
    assert fetch(target, server.url("src.git"), wanted) == [source.side[-1], source.main[-1]]


def test_malformed_oids_are_refused_before_any_network_use(server: GitServer, target: Path):
    for bad in ("abc", "G" * 40, "A" * 40, " " + "a" * 39):
        with pytest.raises(ValueError, match="not an object id"):
            fetch(target, server.url("src.git"), [bad])
    assert server.requests == []


def test_s7_1_v0_server_refusing_unadvertised_wants_falls_back_to_all_tips(
    source: Source, target: Path
):
    """dulwich.web (v0, advertised wants only) answers 500; the fallback fetches every tip."""
    with V0OnlyServer(source.root) as server:
        old = source.main[1]
        assert fetch(target, server.url("src.git"), [old, source.dangling]) == [old]
        assert not has_object(target, source.dangling), "not reachable from any advertised ref"
        assert has_object(target, source.side[-1]), "the fallback fetched every advertised tip"
        posts = [r for r in server.requests if r.method == "POST"]
        assert [r.raised for r in posts] == [True, False], "one refused fetch, then the fallback"
    assert_fsck_clean(target)


def test_s7_1_v0_server_serves_advertised_tips_directly(source: Source, target: Path):
    with V0OnlyServer(source.root) as server:
        assert fetch(target, server.url("src.git"), [source.side[-1]]) == [source.side[-1]]
        assert server.count(method="POST") == 1
        assert not has_object(target, source.main[-1]), "no fallback was needed"


def test_s7_3_incremental_fetch_sends_far_fewer_bytes(big_repo: BigRepo, tmp_path: Path):
    """Haves come from every ref of the target, including refs/nostr/* and tags (S7.3)."""
    half, tip = big_repo.commits[999], big_repo.commits[-1]
    full_target = init_bare(tmp_path / "full.git")
    incremental_target = init_bare(tmp_path / "incremental.git")
    with GitServer(big_repo.root) as server:
        assert fetch(full_target, server.url("big.git"), [tip]) == [tip]
        full_bytes = server.bytes_sent()
        # The incremental target already holds the first half, referenced only by refs/nostr/*.
        fetch(incremental_target, server.url("big.git"), [half])
        from grasp.git import set_nostr_ref

        set_nostr_ref(incremental_target, "e" * 64, half)
        server.reset_log()
        assert fetch(incremental_target, server.url("big.git"), [tip]) == [tip]
        incremental_bytes = server.bytes_sent()
    assert incremental_bytes < full_bytes * 0.7, (incremental_bytes, full_bytes)
    assert_fsck_clean(incremental_target)


def test_s7_3_without_refs_the_whole_history_is_sent_again(big_repo: BigRepo, tmp_path: Path):
    """The control for the test above: unreferenced objects cannot serve as haves."""
    half, tip = big_repo.commits[999], big_repo.commits[-1]
    target = init_bare(tmp_path / "t.git")
    with GitServer(big_repo.root) as server:
        fetch(target, server.url("big.git"), [tip])
        full_bytes = server.bytes_sent()
    target2 = init_bare(tmp_path / "t2.git")
    with GitServer(big_repo.root) as server:
        fetch(target2, server.url("big.git"), [half])
        server.reset_log()
        fetch(target2, server.url("big.git"), [tip])
        assert server.bytes_sent() > full_bytes * 0.9


def test_s7_3_haves_are_the_commits_behind_every_ref(source: Source, tmp_path: Path):
    """heads, nostr refs and (peeled) annotated tags count; refs to non-commits do not."""
    from dulwich.repo import Repo

    from grasp.git.haves import have_heads
    from tests.support.gitrepo import RepoBuilder, git

    repo = RepoBuilder.create(tmp_path / "haves.git")
    git(
        "fetch",
        "-q",
        "--no-write-fetch-head",
        source.path,
        source.dangling,
        source.side[-1],
        git_dir=repo.path,
    )
    repo.set_ref("refs/heads/main", source.main[0])
    repo.set_ref(f"refs/nostr/{'f' * 64}", source.dangling)
    repo.tag("annotated", source.side[-1])
    repo.set_ref("refs/tags/blob", repo.blob("not a commit"))
    with Repo(str(repo.path)) as dulwich_repo:
        assert set(have_heads(dulwich_repo)) == {
            oid.encode() for oid in (source.main[0], source.dangling, source.side[-1])
        }


def test_s7_3_a_repository_without_refs_fetches_without_opening_a_repo(
    server: GitServer, source: Source, target: Path, monkeypatch: pytest.MonkeyPatch
):
    """A new repository has no haves: the fetch sends none and opens no dulwich Repo (P1's
    wait); one with a ref still negotiates from it, so only the missing history comes."""
    import grasp.git.fetch as fetch_module

    opened: list[str] = []
    real_repo = fetch_module.Repo

    def recording(path: str):
        opened.append(path)
        return real_repo(path)

    monkeypatch.setattr(fetch_module, "Repo", recording)
    old = source.main[1]
    assert fetch(target, server.url("src.git"), [old]) == [old]
    assert opened == [], "no Repo for a repository without refs"
    assert_fsck_clean(target)
    from tests.support.gitrepo import RepoBuilder

    RepoBuilder(target).set_ref("refs/heads/main", old)
    server.reset_log()
    tip = source.main[-1]
    assert fetch(target, server.url("src.git"), [tip]) == [tip]
    assert opened == [str(target)], "a repository with a ref negotiates with its haves"
    assert_fsck_clean(target)


def test_s7_3_any_ref_or_shallow_file_means_there_may_be_haves(tmp_path: Path):
    from grasp.git.haves import has_no_haves

    repo = init_bare(tmp_path / "r.git")
    (repo / "refs" / "nostr").mkdir()
    assert has_no_haves(repo), "empty ref directories hold no haves"
    (repo / "refs" / "nostr" / ("e" * 64)).write_text("0" * 40 + "\n")
    assert not has_no_haves(repo), "a loose ref in any namespace"
    (repo / "refs" / "nostr" / ("e" * 64)).unlink()
    (repo / "packed-refs").write_text("")
    assert not has_no_haves(repo), "packed-refs (even an empty one: not parsed here)"
    (repo / "packed-refs").unlink()
    (repo / "shallow").write_text("")
    assert not has_no_haves(repo), "a shallow repository"
