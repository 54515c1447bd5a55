"""``fetch_oids(on_transfer_end=...)``: the server's part is over before the pack is indexed.

Against the real ``git http-backend``: the callback comes exactly once, after the server wrote
the last byte of its last response and sent nothing more afterwards, while the fetched objects
are not yet in the repository (``git index-pack`` has not run), so the caller can free the
domain's slot for the indexing time (S6.1; issue 16 item 5). Refused rounds and the v0
fallback's extra round come before it; a failed transfer never calls it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from grasp.git import FetchError, fetch_oids, missing_oids
from tests.git.conftest import PRIVATE_OK, QUICK, Source
from tests.support import gitchaos
from tests.support.gitserver import GitServer


class Watch:
    """The callback: what the server had seen and what the repository held at that moment."""

    def __init__(self, server: GitServer, target: Path, oids: list[str]) -> None:
        self.server, self.target, self.oids = server, target, oids
        self.calls: list[tuple[float, int, float, set[str]]] = []

    def __call__(self) -> None:
        last_byte = max((r.end for r in self.server.requests), default=0.0)
        absent = missing_oids(self.target, self.oids)
        self.calls.append((time.monotonic(), len(self.server.requests), last_byte, absent))

    def fetch(self, url: str) -> list[str]:
        return fetch_oids(
            self.target, url, self.oids, policy=PRIVATE_OK, limits=QUICK, on_transfer_end=self
        )


def test_s6_1_transfer_end_comes_after_the_last_byte_and_before_indexing(
    server: GitServer, source: Source, target: Path
):
    tip = source.main[-1]
    watch = Watch(server, target, [tip])
    assert watch.fetch(server.url("src.git")) == [tip]
    [(called, requests, last_byte, absent)] = watch.calls
    assert requests == len(server.requests) == 2  # info/refs and the fetch POST, none after
    assert 0 < last_byte <= called
    assert absent == {tip}, "the pack was not indexed yet"
    assert missing_oids(target, [tip]) == set()


def test_s6_1_refused_rounds_come_before_the_transfer_end(
    server: GitServer, source: Source, target: Path
):
    watch = Watch(server, target, ["1" * 40, source.side[-1]])
    assert watch.fetch(server.url("src.git")) == [source.side[-1]]
    [(_, requests, _, absent)] = watch.calls
    assert requests == len(server.requests)  # the refusal and the retry were both before it
    assert server.count(service="git-upload-pack", method="POST") == 2
    assert absent == {"1" * 40, source.side[-1]}


def test_s6_1_the_v0_fallback_round_comes_before_the_transfer_end(source: Source, target: Path):
    with GitServer(source.root, wrap=gitchaos.protocol_v0_only()) as server:
        old = source.main[1]
        watch = Watch(server, target, [source.dangling, old])
        assert watch.fetch(server.url("src.git")) == [old]
        [(_, requests, _, _)] = watch.calls
        assert requests == len(server.requests)
        assert server.count(service="git-upload-pack", method="POST") == 3


def test_s6_1_a_server_without_the_objects_still_ends_the_transfer_once(
    server: GitServer, target: Path
):
    watch = Watch(server, target, ["3" * 40])
    assert watch.fetch(server.url("src.git")) == []
    assert len(watch.calls) == 1 and watch.calls[0][1] == len(server.requests)


def test_s6_1_a_transfer_cut_short_never_reports_its_end(source: Source, target: Path):
    with GitServer(source.root, wrap=gitchaos.truncate_pack(0.5)) as server:
        watch = Watch(server, target, [source.main[-1]])
        with pytest.raises(FetchError):
            watch.fetch(server.url("src.git"))
    assert watch.calls == []


def test_s6_1_no_network_no_transfer_end(server: GitServer, source: Source, target: Path):
    tip = source.main[-1]
    assert Watch(server, target, [tip]).fetch(server.url("src.git")) == [tip]
    server.reset_log()
    again = Watch(server, target, [tip])
    assert again.fetch(server.url("src.git")) == []
    assert again.calls == [] and server.requests == []
