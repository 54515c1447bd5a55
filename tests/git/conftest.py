"""Fixtures for the git data layer: source repositories, a real git server, empty targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from grasp.git import FetchLimits, FetchPolicy
from tests.support.gitrepo import RepoBuilder, init_bare, linear_history
from tests.support.gitserver import GitServer

#: Tests reach the server on 127.0.0.1, so they need the private-address escape hatch.
PRIVATE_OK = FetchPolicy(allow_private=True)
#: Short bounds, so a failing test fails fast instead of waiting out production defaults.
QUICK = FetchLimits(deadline_secs=20, read_timeout_secs=5, max_bytes=64 << 20)


@dataclass(frozen=True)
class Source:
    """``src.git``: main = c1..c5, side = s1..s2 on
    c3, annotated tag v1 -> c2, a dangling commit."""

    root: Path
    path: Path
    main: list[str]
    side: list[str]
    tag_v1: str
    dangling: str


@pytest.fixture(scope="session")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    root = tmp_path_factory.mktemp("served")
    repo = RepoBuilder.create(root / "src.git")
    main = repo.chain(5, branch="main")
    side = repo.chain(2, parent=main[2], branch="side")
    tag_v1 = repo.tag("v1", main[1])
    dangling = repo.commit("dangling", parents=[main[4]])
    return Source(root, repo.path, main, side, tag_v1, dangling)


@dataclass(frozen=True)
class BigRepo:
    root: Path
    path: Path
    commits: list[str]


@pytest.fixture(scope="session")
def big_repo(tmp_path_factory: pytest.TempPathFactory) -> BigRepo:
    """2,000 linear commits over 200 files (about 6,000 objects), built once per session."""
    root = tmp_path_factory.mktemp("big")
    commits = linear_history(root / "big.git", 2000)
    return BigRepo(root, root / "big.git", commits)


@pytest.fixture
def server(source: Source):
    with GitServer(source.root) as srv:
        yield srv


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """An empty bare repository to fetch into."""
    return init_bare(tmp_path / "target.git")
