"""RealSyncContext: the actors' port (``actors.context.SyncContext``) over the real world.

This module and ``grasp.relay`` are the only places where ``grasp`` meets ``actors``
(ARCHITECTURE §2). Reads go to the purgatory store, the event store and the disk; fetches to
``grasp.git.fetch_oids`` under the URL policy and bounds; releases to the release workflow.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from actors.context import AnnouncementInfo, FetchFailed, RepositoryData
from grasp.git import FetchError, FetchLimits, FetchPolicy, fetch_oids
from grasp.purgatory import PurgatoryStore
from grasp.release import ReleaseWorkflow
from grasp.repositories import RepositoryIndex
from messages.releaser import ProcessResult

logger = logging.getLogger(__name__)

__all__ = ["RealSyncContext"]


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
    ) -> None:
        self.index = index
        self.purgatory = purgatory
        self.workflow = workflow
        self.domain = domain
        self.policy = policy
        self.limits = limits
        self._refused: set[str] = set()
        self._lock = threading.Lock()

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

    def fetch_oids(self, repo_path: Path, url: str, oids: Sequence[str]) -> list[str]:
        """Fetch with the URL policy and bounds (S3.4, S7); a refused URL is logged once.

        The git layer's ``FetchError`` becomes the port's :class:`FetchFailed` (same reason):
        the actors know failures only by the port's type.
        """
        try:
            return fetch_oids(repo_path, url, oids, policy=self.policy, limits=self.limits)
        except FetchError as exc:
            if exc.reason == "policy":
                with self._lock:
                    first = url not in self._refused
                    self._refused.add(url)
                logger.log(
                    logging.WARNING if first else logging.DEBUG,
                    "not fetching from %s: %s",
                    url,
                    exc,
                )
            raise FetchFailed(exc.url, exc.reason, exc.detail) from exc

    def process_satisfiable_events(self, identifier: str) -> ProcessResult:
        return self.workflow.process(identifier)

    def has_pending_events(self, identifier: str) -> bool:
        return self.purgatory.has_pending_events(identifier)

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
        return self.purgatory.pending_identifiers()
