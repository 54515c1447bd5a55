"""RealSyncContext: the actors' port (``actors.context.SyncContext``) over the real world.

This module and ``grasp.relay`` are the only places where ``grasp`` meets ``actors``
(ARCHITECTURE §2). Reads go to the purgatory store, the event store and the disk; fetches to
``grasp.git.fetch_oids`` under the URL policy and bounds; releases to the release workflow.

A fetch answers one :class:`~actors.context.FetchResult` (S18.1): the OIDs that arrived, how
many needed ones the server lacked (checked on disk before and after: ``missing_objects``) and
the bytes of the packs it added to the repository. Failures are not logged here: the Scheduler's
sync history logs each once (S18.2); a refusal of a private address names the flag that would
allow it.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from dulwich.errors import NotGitRepository

from actors.context import (
    AnnouncementInfo,
    FetchFailed,
    FetchResult,
    LedgerAnswer,
    RepositoryData,
    TransferEnd,
)
from actors.urls import candidate_urls
from grasp.git import FetchError, FetchLimits, FetchPolicy, fetch_oids, missing_oids
from grasp.git.url_policy import is_address_refusal, would_refuse
from grasp.purgatory import PurgatoryStore
from grasp.release import ReleaseWorkflow
from grasp.repositories import RepositoryIndex
from grasp.store.cluster import LocalCoordination, PostgresCoordination
from messages.releaser import ProcessResult

logger = logging.getLogger(__name__)

__all__ = ["PRIVATE_FETCH_FLAG", "RealSyncContext"]

#: The option that lets fetches reach loopback and private addresses (S3.4).
PRIVATE_FETCH_FLAG = "--allow-private-fetch"


class RealSyncContext:
    def __init__(
        self,
        index: RepositoryIndex,
        purgatory: PurgatoryStore,
        workflow: ReleaseWorkflow,
        *,
        domain: str | None,
        policy: FetchPolicy,
        limits: FetchLimits,
        coordination: LocalCoordination | PostgresCoordination | None = None,
    ) -> None:
        self.index = index
        self.purgatory = purgatory
        self.workflow = workflow
        self.domain = domain
        self.policy = policy
        self.limits = limits
        #: Leases and the throttle ledger (S19.2): in the shared database on a cluster.
        self.coordination = coordination or LocalCoordination()
        self._lock = threading.Lock()
        self._active: dict[Path, set[int]] = {}  # fetches running into each repository
        self._overlapped: set[int] = set()
        self._tokens = itertools.count()

    def fetch_repository_data(self, identifier: str) -> RepositoryData:
        """Announcements of the store and announcement purgatory, then held PRs' URLs (S3.1)."""
        announcements = tuple(
            AnnouncementInfo(a.owner, a.identifier, a.clone_urls)
            for a in self.index.announcements(identifier)
        )
        return RepositoryData(
            identifier, announcements, tuple(self.purgatory.pr_clone_urls(identifier))
        )

    def collect_needed_oids(self, identifier: str) -> set[str]:
        return self.purgatory.needed_oids(identifier)

    def fetch_oids(
        self,
        repo_path: Path,
        url: str,
        oids: Sequence[str],
        on_transfer_end: TransferEnd | None = None,
    ) -> FetchResult:
        """Fetch with the URL policy and bounds (S3.4, S7); one typed result (S18.1).

        The git layer's ``FetchError`` becomes the port's :class:`FetchFailed` (same reason):
        the actors know failures only by the port's type. ``on_transfer_end`` goes to the git
        layer, which calls it when the last pack's last byte arrived, before indexing it.
        """
        try:
            absent = missing_oids(repo_path, oids)
        except (OSError, NotGitRepository) as exc:
            raise FetchFailed(url, "local", f"cannot read {repo_path}: {exc}") from exc
        token = self._begin(repo_path)
        packs = _packs(repo_path)
        try:
            fetched = fetch_oids(
                repo_path,
                url,
                oids,
                policy=self.policy,
                limits=self.limits,
                on_transfer_end=on_transfer_end,
                known_missing=absent,  # P1: one repository open before the request, not two
            )
        except FetchError as exc:
            raise FetchFailed(exc.url, exc.reason, self._explain(exc)) from exc
        finally:
            overlapped = self._end(repo_path, token)
        added = None if overlapped else _added_bytes(packs, _packs(repo_path))
        return FetchResult(tuple(fetched), len(absent) - len(fetched), added)

    def _explain(self, exc: FetchError) -> str:
        """The failure's detail; an address refusal says which flag would allow it (S18.2)."""
        if exc.reason == "policy" and is_address_refusal(exc.detail, self.policy):
            return f"{exc.detail} ({PRIVATE_FETCH_FLAG} allows it)"
        return exc.detail

    def _begin(self, repo_path: Path) -> int:
        """Count a fetch into ``repo_path``; two at once make both packs' sizes unknown."""
        token = next(self._tokens)
        with self._lock:
            running = self._active.setdefault(repo_path, set())
            if running:
                self._overlapped.update(running | {token})
            running.add(token)
        return token

    def _end(self, repo_path: Path, token: int) -> bool:
        with self._lock:
            running = self._active.get(repo_path, set())
            running.discard(token)
            if not running:
                self._active.pop(repo_path, None)
            overlapped = token in self._overlapped
            self._overlapped.discard(token)
        return overlapped

    def fetch_candidates(self, identifier: str) -> list[str]:
        """The URLs a sync of ``identifier`` would try (S3.1, S3.2), without those the fetch
        policy refuses on sight (no DNS): what the PR purgatory answer counts."""
        urls = candidate_urls(self.fetch_repository_data(identifier).clone_urls(), self.domain)
        return [url for url in urls if not would_refuse(url, self.policy)]

    def process_satisfiable_events(self, identifier: str) -> ProcessResult:
        return self.workflow.process(identifier)

    def has_pending_events(self, identifier: str) -> bool:
        # A repository a release left behind is pending work too (D9): its sync retries it.
        return self.purgatory.has_pending_events(identifier) or self.workflow.owes(identifier)

    def find_target_repo(self, data: RepositoryData) -> Path | None:
        """The first owner repository of the identifier that exists on disk (S7.1)."""
        for owner in dict.fromkeys(a.owner for a in data.announcements):
            path = self.index.repo_path(owner, data.identifier)
            if path.is_dir():
                return path
        return None

    def our_domain(self) -> str | None:
        return self.domain

    def pending_identifiers(self) -> list[str]:
        self.purgatory.refresh()  # S19.2: what any node holds (a no-op while nothing changed)
        return self.purgatory.pending_identifiers()

    def take_lease(self, identifier: str) -> bool:
        return self.coordination.take_lease(identifier)

    def release_lease(self, identifier: str) -> None:
        self.coordination.release_lease(identifier)

    def ledger_start(
        self, domain: str, max_concurrent: int, max_per_window: int, window: float
    ) -> LedgerAnswer:
        return self.coordination.ledger_start(domain, max_concurrent, max_per_window, window)

    def ledger_done(self, domain: str, contacted: bool) -> None:
        self.coordination.ledger_done(domain, contacted)


def _packs(repo_path: Path) -> dict[str, int]:
    """Pack file name -> size in the repository's ``objects/pack`` (empty when absent)."""
    try:
        with os.scandir(repo_path / "objects" / "pack") as entries:
            return {e.name: e.stat().st_size for e in entries if e.name.endswith(".pack")}
    except OSError:
        return {}


def _added_bytes(before: dict[str, int], after: dict[str, int]) -> int:
    """The bytes of the packs a fetch stored (S18.1): what arrived and was kept."""
    return sum(size for name, size in after.items() if name not in before)
