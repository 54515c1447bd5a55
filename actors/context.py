"""The port between the actors and the world (ARCHITECTURE §4).

Actors know git servers, repositories and purgatory only through a :class:`SyncContext`.
``grasp.context.RealSyncContext`` implements it over the purgatory store, the event store and
dulwich; ``actors.fakes.MockSyncContext`` implements it for unit tests. Both honour the same
contract (``tests/actors/test_port_contract.py``).

Failures at the port are typed: a fetch that fails for a reason of the world's making (a dead
server, a refused URL, a pack over the cap) raises :class:`FetchFailed`. That is the only
exception the sync functions catch; anything else a port method raises is a bug, which the
FetchActor logs once with its traceback and the Scheduler's backoff retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from messages.port import AnnouncementInfo, RepositoryData
from messages.releaser import ProcessResult

__all__ = [
    "FETCH_FAILURE_REASONS",
    "AnnouncementInfo",
    "FetchFailed",
    "ProcessResult",
    "RepositoryData",
    "SyncContext",
]

#: The kinds of fetch failure (S7.2); ``missing_objects`` is not one: a server that answers
#: without the needed objects fetched nothing, which is an empty result, not a failure.
FETCH_FAILURE_REASONS = frozenset(
    {
        "policy",
        "dns",
        "refused",
        "tls",
        "timeout",
        "not_found",
        "http_error",
        "protocol",
        "too_large",
        "local",
    }
)


class FetchFailed(Exception):
    """A fetch from ``url`` failed; ``reason`` is one of :data:`FETCH_FAILURE_REASONS`.

    ``str()`` names the URL and the reason, so a log line needs nothing else.
    """

    def __init__(self, url: str, reason: str, detail: str = "") -> None:
        if reason not in FETCH_FAILURE_REASONS:
            raise ValueError(f"unknown fetch failure reason {reason!r}")
        super().__init__(url, reason, detail)
        self.url, self.reason, self.detail = url, reason, detail

    def __str__(self) -> str:
        text = f"fetch from {self.url} failed ({self.reason})"
        return f"{text}: {self.detail}" if self.detail else text


@runtime_checkable
class SyncContext(Protocol):
    """Everything purgatory sync asks of the outside world.

    ``fetch_oids`` blocks (network) and raises :class:`FetchFailed` on failure; the other
    methods are quick reads except ``process_satisfiable_events``, which writes refs and events
    and is therefore only ever called by the single Releaser (S8.1).
    """

    def fetch_repository_data(self, identifier: str) -> RepositoryData: ...

    def collect_needed_oids(self, identifier: str) -> set[str]: ...

    def fetch_oids(self, repo_path: Path, url: str, oids: Sequence[str]) -> list[str]: ...

    def process_satisfiable_events(self, identifier: str) -> ProcessResult: ...

    def has_pending_events(self, identifier: str) -> bool: ...

    def find_target_repo(self, data: RepositoryData) -> Path | None: ...

    def our_domain(self) -> str | None: ...

    def pending_identifiers(self) -> list[str]: ...
