"""RealSyncContext's answers that explain a held event (S18): bytes stored, objects a server
lacked, a refusal that names the flag which would allow it, and the URLs a sync would try."""

from __future__ import annotations

import pytest

from actors.context import FetchFailed
from grasp.git import FetchPolicy
from tests.support.gitrepo import RepoBuilder
from tests.support.gitserver import GitServer
from tests.support.nip34 import Key

D = "visible"


def _pack_sizes(repo) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (repo / "objects" / "pack").glob("*.pack")}


def test_s18_1_pack_bytes_are_the_size_of_the_pack_the_fetch_stored(world, tmp_path):
    owner = Key()
    with GitServer(tmp_path / "remote", host="127.0.0.2") as server:
        tip = RepoBuilder.create(server.root / f"{D}.git").chain(5, branch="main")[-1]
        world.announce(owner, D, clone=[server.url(f"{D}.git")])
        world.hold_state(owner.state(D, {"refs/heads/main": tip}))
        target = world.repo(owner, D)
        before = _pack_sizes(target)
        result = world.ctx.fetch_oids(target, server.url(f"{D}.git"), [tip])
    added = {n: size for n, size in _pack_sizes(target).items() if n not in before}
    assert result.oids == (tip,) and result.missing == 0
    assert len(added) == 1 and result.pack_bytes == sum(added.values()) > 0


def test_s18_1_an_object_already_present_is_not_counted_as_missing(world, tmp_path):
    """``missing`` counts what was absent before and is still absent, not what we had."""
    owner = Key()
    with GitServer(tmp_path / "remote", host="127.0.0.2") as server:
        remote = RepoBuilder.create(server.root / f"{D}.git")
        first = remote.commit("first", branch="main")
        world.announce(owner, D, clone=[server.url(f"{D}.git")])
        target = world.repo(owner, D)
        assert world.ctx.fetch_oids(target, server.url(f"{D}.git"), [first]).oids == (first,)
        lacking = RepoBuilder.create(tmp_path / "elsewhere.git").commit("never served")
        result = world.ctx.fetch_oids(target, server.url(f"{D}.git"), [first, lacking])
    assert result.oids == () and result.missing == 1


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("http://127.0.0.1:9/x.git", True),  # a loopback address: the flag lifts it
        ("http://10.1.2.3/x.git", True),  # a private one
        ("git://example.com/x.git", False),  # the scheme: no flag allows it
        ("http://user:pw@example.com/x.git", False),
    ],
)
def test_s18_2_an_address_refusal_names_the_flag_that_allows_it(world, url, hint):
    world.ctx.policy = FetchPolicy()  # what a relay without --allow-private-fetch runs with
    owner = Key()
    world.announce(owner, D, clone=[url])
    with pytest.raises(FetchFailed) as failure:
        world.ctx.fetch_oids(world.repo(owner, D), url, ["a" * 40])
    assert failure.value.reason == "policy"
    assert ("(--allow-private-fetch allows it)" in failure.value.detail) is hint


def test_fetch_candidates_leave_out_our_own_service_and_what_the_policy_refuses(world):
    """What the PR purgatory answer counts (S3.1, S3.2, S3.4): without DNS lookups."""
    world.ctx.policy = FetchPolicy()
    owner = Key()
    ours = "http://relay.invalid/npub/visible.git"
    world.announce(
        owner,
        D,
        clone=[
            ours,
            "https://forge.example/visible.git",
            "git://old.example/visible.git",
            "http://127.0.0.1:8080/visible.git",
            "https://mirror.example/visible.git",
        ],
    )
    assert world.ctx.fetch_candidates(D) == [
        "https://forge.example/visible.git",
        "https://mirror.example/visible.git",
    ]
