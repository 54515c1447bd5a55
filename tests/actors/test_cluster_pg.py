"""Two actor systems on one real PostgreSQL and one real git server (S19.2).

Each system is a node with its own :class:`~grasp.store.cluster.PostgresCoordination` (its own
connection pool) over one database; both share one world: identifiers whose held event needs
the tip of a remote repository served by ``git http-backend`` (``tests/support/gitserver.py``)
and fetched for real by ``grasp.git.fetch_oids`` into the one local repository per identifier
(the shared ``--data-dir`` of a cluster). The git server's request log is the judge: one
fetch (one ``info/refs`` advertisement) per identifier across both nodes, and the limits of S6
as the server saw them, summed over nodes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from actors.context import AnnouncementInfo, FetchFailed, FetchResult, RepositoryData
from actors.fakes import max_in_window
from grasp.git import FetchError, FetchLimits, FetchPolicy, fetch_oids, missing_oids
from grasp.store.cluster import PostgresCoordination
from grasp.store.postgres import PostgresEventStore
from messages.port import LedgerAnswer
from messages.releaser import ProcessResult
from tests.support.gitrepo import RepoBuilder, init_bare
from tests.support.gitserver import GitServer, most_open
from tests.support.postgres import postgres_database, postgres_server  # noqa: F401
from tests.support.wait import wait_for

IDENTIFIERS = 12
MAX_CONCURRENT, MAX_PER_WINDOW, WINDOW = 2, 5, 1.0
POLICY = FetchPolicy(allow_private=True)  # loopback servers only
LIMITS = FetchLimits(deadline_secs=20, read_timeout_secs=10)


class GitWorld:
    """The held events and repositories every node shares; fetches are real git fetches."""

    def __init__(self, root: Path, server: GitServer) -> None:
        self.server, self.released = server, set[str]()
        self.tips: dict[str, str] = {}
        for i in range(IDENTIFIERS):
            identifier = f"repo{i:02d}"
            remote = RepoBuilder.create(server.root / f"{identifier}.git")
            self.tips[identifier] = remote.commit(files={"id": identifier}, branch="main")
            init_bare(root / "local" / f"{identifier}.git")
        self.root = root
        self._lock = threading.Lock()

    def local(self, identifier: str) -> Path:
        return self.root / "local" / f"{identifier}.git"

    def fetch_repository_data(self, identifier: str) -> RepositoryData:
        urls = (self.server.url(f"{identifier}.git"),)
        return RepositoryData(identifier, (AnnouncementInfo("0" * 64, identifier, urls),))

    def collect_needed_oids(self, identifier: str) -> set[str]:
        if identifier in self.released:
            return set()
        return missing_oids(self.local(identifier), [self.tips[identifier]])

    def fetch_oids(
        self,
        repo_path: Path,
        url: str,
        oids: Sequence[str],
        on_transfer_end: Callable[[], None] | None = None,
    ) -> FetchResult:
        try:
            fetched = fetch_oids(
                repo_path, url, oids, policy=POLICY, limits=LIMITS, on_transfer_end=on_transfer_end
            )
        except FetchError as exc:
            raise FetchFailed(exc.url, exc.reason, exc.detail) from exc
        return FetchResult(tuple(fetched), len(oids) - len(fetched))

    def process_satisfiable_events(self, identifier: str) -> ProcessResult:
        with self._lock:
            if identifier in self.released or self.collect_needed_oids(identifier):
                return ProcessResult()
            self.released.add(identifier)
        return ProcessResult(states_released=1, repos_synced=1)

    def has_pending_events(self, identifier: str) -> bool:
        return identifier not in self.released

    def find_target_repo(self, data: RepositoryData) -> Path | None:
        return self.local(data.identifier)

    def our_domain(self) -> str | None:
        return None

    def pending_identifiers(self) -> list[str]:
        return [i for i in self.tips if i not in self.released]


class NodePort:
    """One node: the shared world and its own coordination in the database."""

    def __init__(self, world: GitWorld, coordination: PostgresCoordination) -> None:
        self.world, self.coordination = world, coordination

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world, name)

    def take_lease(self, identifier: str) -> bool:
        return self.coordination.take_lease(identifier)

    def release_lease(self, identifier: str) -> None:
        self.coordination.release_lease(identifier)

    def ledger_start(self, domain: str, *limits: Any) -> LedgerAnswer:
        return self.coordination.ledger_start(domain, *limits)

    def ledger_done(self, domain: str, contacted: bool) -> None:
        self.coordination.ledger_done(domain, contacted)


@pytest.mark.slow
def test_s19_2_two_nodes_on_postgres_fetch_each_identifier_once_within_summed_limits(
    tmp_path, request, start_system
):
    database = request.getfixturevalue("postgres_database")  # tests/support/postgres.py
    (tmp_path / "remote").mkdir()
    with GitServer(tmp_path / "remote") as server:
        world = GitWorld(tmp_path, server)
        stores = [PostgresEventStore(database, pool_size=4) for _ in range(2)]
        try:
            nodes = []
            for name, store in zip(("a", "b"), stores, strict=True):
                coordination = PostgresCoordination(store, f"node-{name}")
                coordination.start()
                port = NodePort(world, coordination)
                nodes.append((start_system(port, max_concurrent=MAX_CONCURRENT,
                                           max_per_minute=MAX_PER_WINDOW, rate_window=WINDOW,
                                           synced_delay=0.0), coordination))  # fmt: skip
            for identifier in world.tips:
                for harness, _ in nodes:  # both nodes hold an event of every identifier
                    harness.system.enqueue_sync(identifier, "synced")
            wait_for(
                lambda: not world.pending_identifiers(),
                timeout=60,
                message=lambda: f"release of {world.pending_identifiers()}",
            )
            for harness, coordination in nodes:
                harness.system.stop()
                coordination.close()
        finally:
            for store in stores:
                store.close()
    adverts = [r for r in server.requests if r.method == "GET"]
    per_repo = Counter(r.path for r in adverts)
    assert per_repo == Counter({f"/repo{i:02d}.git/info/refs": 1 for i in range(IDENTIFIERS)})
    assert all(r.end for r in server.requests)  # every request was answered
    # each request from its arrival to its last byte (RequestRecord.end): the relay frees a slot
    # at the pack's last byte (S6.1, issue 16), while git http-backend's own exit comes after it
    assert 1 <= most_open((r.time, r.end) for r in server.requests) <= MAX_CONCURRENT
    starts = sorted(r.time for r in adverts)
    assert max_in_window(starts, WINDOW) <= MAX_PER_WINDOW
    assert starts[-1] - starts[0] >= WINDOW  # 12 fetches at 5 per second took over a window
