"""Periodic purgatory upkeep: the expiry sweep (S1.4, every ``--maintenance-interval-secs``,
60 s by default) and what expiry leaves behind.

An announcement that expires without its repository ever receiving data leaves an empty bare
repository that nothing serves any more (S10.5 serves accepted and held announcements only);
the sweeper removes it, but only when it is still empty (no refs) and no stored announcement
of the same owner and identifier claims it.

An expired placeholder leaves a ref and objects (S14.3). Refs are the Releaser's to write
(S8.1), so the sweeper only tells it ``GitDataArrived`` for each identifier with placeholders
to clean up; its release pass deletes the refs and prunes the objects (:mod:`grasp.cleanup`).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable

import gevent

from grasp.admission.write_policy import SyncPort
from grasp.git import list_refs
from grasp.nostr.nip34 import Announcement
from grasp.purgatory import PurgatoryStore, SweepResult
from grasp.repositories import RepositoryIndex

logger = logging.getLogger(__name__)

__all__ = ["SWEEP_INTERVAL_SECS", "PurgatorySweeper"]

SWEEP_INTERVAL_SECS = 60.0


class PurgatorySweeper:
    def __init__(
        self,
        purgatory: PurgatoryStore,
        index: RepositoryIndex,
        interval: float = SWEEP_INTERVAL_SECS,
        on_sweep: Callable[[SweepResult], object] | None = None,
        sync: SyncPort | None = None,
    ) -> None:
        self.purgatory = purgatory
        self.index = index
        self.interval = interval
        #: Upkeep of what expiry leaves elsewhere (GRASP-06 /prs/ placeholders, S16.1).
        self.on_sweep = on_sweep
        self.sync = sync
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=5)
            self._greenlet = None

    def _run(self) -> None:
        while True:
            gevent.sleep(self.interval)
            try:
                self.sweep()
            except Exception:
                logger.exception("purgatory sweep failed; trying again in %.0f s", self.interval)

    def sweep(self) -> SweepResult:
        self.purgatory.refresh()  # S19.2: deadlines another node extended are not expired
        result = self.purgatory.sweep()
        for announcement in result.announcements:
            self._remove_unused_repo(announcement)
        if self.on_sweep is not None:
            self.on_sweep(result)
        self.request_cleanup()
        return result

    def request_cleanup(self) -> list[str]:
        """Ask the Releaser to clean up expired placeholders (also at start: a crash may have
        come between a sweep and the cleanup); returns the identifiers asked for."""
        identifiers = self.purgatory.cleanup_identifiers()
        if self.sync is not None:
            for identifier in identifiers:
                self.sync.git_data_arrived(identifier)
        return identifiers

    def _remove_unused_repo(self, announcement: Announcement) -> None:
        owner, identifier = announcement.owner, announcement.identifier
        if any(a.owner == owner for a in self.index.announcements(identifier)):
            return  # a stored (or newer held) announcement still claims the repository
        path = self.index.repo_path(owner, identifier)
        if not path.is_dir() or list_refs(path):
            return
        shutil.rmtree(path, ignore_errors=True)
        logger.info(
            "removed the empty repository of expired announcement %s: %s",
            announcement.event.id,
            path,
        )
