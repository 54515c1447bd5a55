"""S14.1 through ``fetch_oids``: endless and oversized advertisements fail fast as ``too_large``,
leave the target unchanged, and never stall the hub (S7.4); honest ones under the caps fetch."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from grasp.git import FetchError, FetchLimits, fetch_oids
from tests.git.conftest import PRIVATE_OK, Source
from tests.support.endless_refs import WHERE, EndlessRefsServer
from tests.support.gitchaos import protocol_v0_only
from tests.support.gitrepo import RepoBuilder, assert_fsck_clean, objects_listing
from tests.support.gitserver import GitServer
from tests.support.gitstall import HubTicker

MIB = 1 << 20


def _fetch_from_endless(
    target: Path, where: str, limits: FetchLimits
) -> tuple[FetchError, HubTicker]:
    before = objects_listing(target)
    with EndlessRefsServer(where) as server, HubTicker() as ticker:
        with pytest.raises(FetchError) as info:
            fetch_oids(target, server.url("x.git"), ["1" * 40], policy=PRIVATE_OK, limits=limits)
    assert objects_listing(target) == before
    assert_fsck_clean(target)
    return info.value, ticker


@pytest.mark.parametrize("where", WHERE)
def test_s14_1_endless_advertisement_is_too_large_without_stalling_the_hub(
    target: Path, where: str
):
    limits = FetchLimits(20, 5, max_advertisement_bytes=4 * MIB)
    error, ticker = _fetch_from_endless(target, where, limits)
    assert error.reason == "too_large", error
    if where == "capabilities":  # capped at 64 KiB: over at once
        assert "capability advertisement larger than 65520 bytes" in error.detail
    else:
        assert "larger than 4194304 bytes" in error.detail
        # S7.4 / S14.1: the probe greenlet ran again and again *while* the 4 MiB were parsed
        # (an ordering, not a duration; the worst stall is measured by scripts/bench/fetch.py)
        assert ticker.ticks > 5, "the hub kept running other greenlets"


def test_s14_1_endless_advertisement_stops_at_the_ref_count(target: Path):
    error, _ = _fetch_from_endless(target, "ls-refs", FetchLimits(20, 5, max_refs=1000))
    assert error.reason == "too_large" and "more than 1000 refs" in error.detail, error


@pytest.mark.slow
def test_s14_1_default_caps_end_an_endless_advertisement_at_the_byte_cap(target: Path):
    """At the defaults (32 MiB): what the relay meets in the wild.  The cap ends it, not the
    deadline, and the hub kept running other greenlets throughout.  How long it takes and the
    worst hub stall are measured by ``scripts/bench/fetch.py --hostile`` (no timing here: the
    30 s and 100 ms bounds failed under load, issue 16)."""
    error, ticker = _fetch_from_endless(target, "ls-refs", FetchLimits(deadline_secs=120))
    assert error.reason == "too_large" and "33554432 bytes" in error.detail, error
    assert ticker.ticks > 5, "the hub kept running other greenlets"


@pytest.fixture(scope="module")
def many_refs(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """``refs.git``: one commit on main plus 3,000 tags on it (an honest, ref-heavy server)."""
    root = tmp_path_factory.mktemp("refs")
    repo = RepoBuilder.create(root / "refs.git")
    main = repo.chain(2, branch="main")
    lines = "".join(f"create refs/tags/t{n:05d} {main[-1]}\n" for n in range(3000))
    subprocess.run(
        ["git", "--git-dir", str(repo.path), "update-ref", "--stdin"],
        input=lines, text=True, check=True, timeout=30,
    )  # fmt: skip
    return Source(root, repo.path, main, [], "", "")


@pytest.mark.parametrize("v0", [False, True], ids=["v2", "v0"])
def test_s14_1_honest_advertisement_under_the_ref_cap_fetches(
    many_refs: Source, target: Path, v0: bool
):
    limits = FetchLimits(20, 5, max_refs=3002)  # HEAD, main and 3,000 tags
    with GitServer(many_refs.root, wrap=protocol_v0_only() if v0 else None) as server:
        url = server.url("refs.git")
        got = fetch_oids(target, url, [many_refs.main[-1]], policy=PRIVATE_OK, limits=limits)
        assert got == [many_refs.main[-1]]
        tight = FetchLimits(20, 5, max_refs=3001)
        unknown = ["1" * 40]  # an OID nobody has, so the fetch goes out
        if not v0:
            # v2 with fixed wants asks no ls-refs (P6): the 3,000 refs are never listed, so
            # the cap cannot bind; the refusal names the OID and nothing is fetched
            assert fetch_oids(target, url, unknown, policy=PRIVATE_OK, limits=tight) == []
            assert server.count(service="git-upload-pack", method="POST") == 2
            return
        with pytest.raises(FetchError) as info:
            fetch_oids(target, url, unknown, policy=PRIVATE_OK, limits=tight)
    assert info.value.reason == "too_large" and "more than 3001 refs" in info.value.detail
