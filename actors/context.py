"""The port between the actors and the world (ARCHITECTURE §4).

Actors know git servers, repositories and purgatory only through a :class:`SyncContext`.
``grasp.context.RealSyncContext`` implements it over the purgatory store, the SQLite event
store and dulwich; ``actors.testing.MockSyncContext`` implements it for unit tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from messages.releaser import ProcessResult

__all__ = ["AnnouncementInfo", "ProcessResult", "RepositoryData", "SyncContext"]


@dataclass(frozen=True, slots=True)
class AnnouncementInfo:
    """What sync needs of one repository announcement (kind 30617)."""

    owner: str
    identifier: str
    clone_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RepositoryData:
    """The announcements of an identifier (store and announcement purgatory, any owner, in a
    deterministic order) plus the clone URLs of its held PR events (S3.1)."""

    identifier: str
    announcements: tuple[AnnouncementInfo, ...] = ()
    pr_clone_urls: tuple[str, ...] = ()

    def clone_urls(self) -> list[str]:
        """Every candidate URL once: announcement order, then PR order (S3.1)."""
        urls: Iterable[str] = (
            url for announcement in self.announcements for url in announcement.clone_urls
        )
        return list(dict.fromkeys([*urls, *self.pr_clone_urls]))


@runtime_checkable
class SyncContext(Protocol):
    """Everything purgatory sync asks of the outside world.

    ``fetch_oids`` blocks (network) and raises on failure; the other methods are quick reads
    except ``process_satisfiable_events``, which writes refs and events and is therefore only
    ever called by the single Releaser (S8.1).
    """

    def fetch_repository_data(self, identifier: str) -> RepositoryData: ...

    def collect_needed_oids(self, identifier: str) -> set[str]: ...

    def fetch_oids(self, repo_path: Path, url: str, oids: Sequence[str]) -> list[str]: ...

    def process_satisfiable_events(self, identifier: str) -> ProcessResult: ...

    def has_pending_events(self, identifier: str) -> bool: ...

    def find_target_repo(self, data: RepositoryData) -> Path | None: ...

    def our_domain(self) -> str | None: ...

    def pending_identifiers(self) -> list[str]: ...
