"""``fetch_oids(known_missing=...)``: the caller's own check of what is absent is reused.

The port (``grasp.context.RealSyncContext``) checks which OIDs the target lacks before every
fetch (it counts them for S18.1); passing that set spares the git layer a second repository
open before the first request (P1's wait, issue 16 item 4). The result must be the same as
without it: exactly the OIDs that were missing and are present now (S5.2), nothing fetched
when none is missing, and an OID the caller already holds is never asked for again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import grasp.git.fetch as git_fetch
from grasp.git import fetch_oids, missing_oids
from tests.git.conftest import PRIVATE_OK, QUICK, Source
from tests.support.gitserver import GitServer


def _fetch(target: Path, url: str, oids: list[str], known: set[str]) -> list[str]:
    return fetch_oids(target, url, oids, policy=PRIVATE_OK, limits=QUICK, known_missing=known)


def test_s5_2_known_missing_fetches_what_a_fresh_check_would(
    server: GitServer, source: Source, target: Path, monkeypatch: pytest.MonkeyPatch
):
    oids = [source.main[-1], source.side[-1]]
    known = missing_oids(target, oids)
    calls: list[Path] = []
    real = git_fetch.missing_oids

    def counted(repo: Path, wanted: object) -> set[str]:
        calls.append(Path(repo))
        return real(repo, wanted)  # type: ignore[arg-type]

    monkeypatch.setattr(git_fetch, "missing_oids", counted)
    assert _fetch(target, server.url("src.git"), oids, known) == oids
    assert len(calls) == 1, "only the check after the transfer, none before the request"
    assert missing_oids(target, oids) == set()


def test_s5_2_known_missing_empty_means_no_request(server: GitServer, source: Source, target: Path):
    assert _fetch(target, server.url("src.git"), [source.main[-1]], set()) == []
    assert server.requests == []


def test_s5_2_known_missing_outside_the_wanted_oids_is_ignored(
    server: GitServer, source: Source, target: Path
):
    tip = source.main[-1]
    assert _fetch(target, server.url("src.git"), [tip], {tip, "2" * 40}) == [tip]
