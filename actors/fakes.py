"""Fakes of the port, for tests and benchmarks: the seed's MockSyncContext, without I/O.

Shipped in the package so that tests, benchmarks and trace scenarios share one fake, and named
for what it is: nothing in the relay uses it. It keeps the contract of the real port
(``tests/actors/test_port_contract.py`` runs the same promises against both).

It follows the seed's builder (``with_urls``, ``with_needed_oids``, ``url_provides``) and the
original's mock semantics: ``fetch_oids`` logs the URL, fails for URLs set to fail (with the
reason they were set to fail with), and otherwise returns (and stops needing) the requested
OIDs the URL provides; the rest count as ``missing`` (S18.1). A failing URL
raises :class:`~actors.context.FetchFailed`, as the real port does. Beyond the seed it
keeps several identifiers apart, can make fetches take time like a network call (a gevent
sleep), and counts per-domain in-flight requests and start times, so actor-level tests can
prove from the outside that no limit was ever exceeded. Like the real port, a fetch that got an
answer reports the end of its transfer (``on_transfer_end``) before it returns; a request
counts in flight until then, as the remote would see it, and ``with_ingest_delay`` or
``with_ingest_gate`` make the fetch go on afterwards, as indexing a pack does.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .context import (
    AnnouncementInfo,
    FetchFailed,
    FetchResult,
    LedgerAnswer,
    ProcessResult,
    RepositoryData,
    TransferEnd,
)
from .coordination import MemoryCoordination
from .urls import extract_domain

__all__ = ["MockSyncContext", "max_in_window"]

DEFAULT_IDENTIFIER = "test-repo"


class MockSyncContext:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._urls: dict[str | None, list[str]] = defaultdict(list)
        self._pr_urls: dict[str | None, list[str]] = defaultdict(list)
        self.needed_oids: dict[str, set[str]] = defaultdict(set)
        self._needing: dict[str, set[str]] = defaultdict(set)  # oid -> identifiers needing it
        self.url_provides_oids: dict[str, set[str]] = defaultdict(set)
        self.failing_urls: dict[str, tuple[str, str]] = {}  # url -> (reason, detail)
        self.failing_releases: dict[str, int] = {}  # identifier -> release passes left to fail
        self.present_oids: dict[str, set[str]] = defaultdict(set)  # needed, but already here
        self.released: set[str] = set()
        self._pending_override: bool | None = None
        self._our_domain: str | None = None
        self._target: Path | None = Path("/nonexistent/test-repo.git")
        self._fetch_delay = 0.0
        self._ingest_delay = 0.0
        self._ingest_gate: Any = None
        self.transfer_ends: list[str] = []  # URLs, in the order their transfers ended
        self._lock = threading.Lock()
        self.fetch_log: list[tuple[str, tuple[str, ...]]] = []
        self.process_calls: list[str] = []
        self.in_flight: dict[str, int] = defaultdict(int)
        self.max_in_flight: dict[str, int] = defaultdict(int)
        self.request_starts: dict[str, list[float]] = defaultdict(list)
        self.coordination: MemoryCoordination | None = None  # None: one node, all granted

    # -- builder ----------------------------------------------------------------------------

    def with_urls(self, urls: Iterable[str], identifier: str | None = None) -> MockSyncContext:
        """Announcement clone URLs; ``identifier=None`` applies to every identifier."""
        self._urls[identifier].extend(urls)
        return self

    def with_pr_urls(self, urls: Iterable[str], identifier: str | None = None) -> MockSyncContext:
        self._pr_urls[identifier].extend(urls)
        return self

    def with_needed_oids(
        self, oids: Iterable[str], identifier: str = DEFAULT_IDENTIFIER
    ) -> MockSyncContext:
        oids = list(oids)
        self.needed_oids[identifier].update(oids)
        for oid in oids:
            self._needing[oid].add(identifier)
        return self

    def url_provides(self, url: str, oids: Iterable[str]) -> MockSyncContext:
        self.url_provides_oids[url].update(oids)
        return self

    def url_fails(
        self, url: str, reason: str = "refused", detail: str = "configured to fail"
    ) -> MockSyncContext:
        """Every fetch from ``url`` raises ``FetchFailed(url, reason, detail)`` (S7.2 kinds)."""
        FetchFailed(url, reason)  # an unknown reason fails here, not in the middle of a test
        self.failing_urls[url] = (reason, detail)
        return self

    def with_present_oids(
        self, oids: Iterable[str], identifier: str = DEFAULT_IDENTIFIER
    ) -> MockSyncContext:
        """Objects the identifier's held events need that are already on disk, counted as
        needed as the relay counts them (S2.3): a fetch of only these asks the network
        nothing and returns no OIDs and none missing, as the real port does."""
        self.present_oids[identifier].update(oids)
        self.needed_oids.setdefault(identifier, set())  # held
        return self

    def release_fails(self, identifier: str, times: int = 1) -> MockSyncContext:
        """The next ``times`` release passes that could release ``identifier`` report an error
        and release nothing, as a failed ref update or save does (S5.3's deviation)."""
        self.failing_releases[identifier] = times
        return self

    def with_pending(self, pending: bool) -> MockSyncContext:
        self._pending_override = pending
        return self

    def with_our_domain(self, domain: str | None) -> MockSyncContext:
        self._our_domain = domain
        return self

    def with_target_repo(self, path: Path | None) -> MockSyncContext:
        self._target = path
        return self

    def with_coordination(self, coordination: MemoryCoordination) -> MockSyncContext:
        """Join a :class:`~actors.coordination.MemoryCluster` as one node (S19.2)."""
        self.coordination = coordination
        return self

    def with_fetch_delay(self, seconds: float) -> MockSyncContext:
        """Make every fetch yield for ``seconds`` (gevent-cooperative), like network I/O."""
        self._fetch_delay = seconds
        return self

    def with_ingest_delay(self, seconds: float) -> MockSyncContext:
        """After a fetch's transfer ended, yield ``seconds`` more before it returns (gevent),
        as indexing the pack does."""
        self._ingest_delay = seconds
        return self

    def with_ingest_gate(self, gate: Any) -> MockSyncContext:
        """After a fetch's transfer ended, wait for ``gate`` (a ``gevent.event.Event``) to be
        set before returning: a test holds a fetch "indexing" as long as it likes."""
        self._ingest_gate = gate
        return self

    # -- SyncContext ------------------------------------------------------------------------

    def fetch_repository_data(self, identifier: str) -> RepositoryData:
        urls = tuple([*self._urls[None], *self._urls.get(identifier, ())])
        prs = tuple([*self._pr_urls[None], *self._pr_urls.get(identifier, ())])
        return RepositoryData(identifier, (AnnouncementInfo("0" * 64, identifier, urls),), prs)

    def collect_needed_oids(self, identifier: str) -> set[str]:
        needed = set(self.needed_oids.get(identifier, ()))
        if identifier not in self.released:
            needed.update(self.present_oids.get(identifier, ()))
        return needed

    def fetch_oids(
        self,
        repo_path: Path,
        url: str,
        oids: Sequence[str],
        on_transfer_end: TransferEnd | None = None,
    ) -> FetchResult:
        if self.present_oids:  # only what is absent is asked for, as the real port does
            present = set().union(*self.present_oids.values())
            oids = [oid for oid in oids if oid not in present]
            if not oids:
                return FetchResult(())  # nothing absent: no request made (S2.3)
        domain = extract_domain(url) or ""
        with self._lock:
            self.fetch_log.append((url, tuple(oids)))
            self.in_flight[domain] += 1
            self.max_in_flight[domain] = max(self.max_in_flight[domain], self.in_flight[domain])
            self.request_starts[domain].append(self._clock())
        transferring = True
        try:
            if self._fetch_delay:
                import gevent

                gevent.sleep(self._fetch_delay)
            if url in self.failing_urls:
                raise FetchFailed(url, *self.failing_urls[url])
            with self._lock:
                self.in_flight[domain] -= 1
                transferring = False
                self.transfer_ends.append(url)
            if on_transfer_end is not None:
                on_transfer_end()
            self._ingest()
            provided = [oid for oid in oids if oid in self.url_provides_oids.get(url, ())]
            for oid in provided:  # through the index: a benchmark holds thousands of identifiers
                for identifier in self._needing.get(oid, ()):
                    self.needed_oids[identifier].discard(oid)
            return FetchResult(tuple(provided), missing=len(set(oids)) - len(provided))
        finally:
            if transferring:
                with self._lock:
                    self.in_flight[domain] -= 1

    def _ingest(self) -> None:
        """The time a fetch goes on after its transfer, as indexing a pack takes."""
        if self._ingest_delay:
            import gevent

            gevent.sleep(self._ingest_delay)
        if self._ingest_gate is not None:
            self._ingest_gate.wait(timeout=30.0)  # bounded: a test that forgets it still ends

    def process_satisfiable_events(self, identifier: str) -> ProcessResult:
        self.process_calls.append(identifier)
        if self.needed_oids.get(identifier) or identifier in self.released:
            return ProcessResult()
        if identifier not in self.needed_oids:
            return ProcessResult()
        if self.failing_releases.get(identifier, 0) > 0:
            self.failing_releases[identifier] -= 1
            return ProcessResult(errors=(f"{identifier}: configured to fail",))
        self.released.add(identifier)
        return ProcessResult(states_released=1, repos_synced=1)

    def has_pending_events(self, identifier: str) -> bool:
        if self._pending_override is not None:
            return self._pending_override
        return identifier in self.needed_oids and identifier not in self.released

    def find_target_repo(self, data: RepositoryData) -> Path | None:
        return self._target

    def our_domain(self) -> str | None:
        return self._our_domain

    def pending_identifiers(self) -> list[str]:
        return [i for i in self.needed_oids if self.has_pending_events(i)]

    def take_lease(self, identifier: str) -> bool:
        return self.coordination is None or self.coordination.take_lease(identifier)

    def release_lease(self, identifier: str) -> None:
        if self.coordination is not None:
            self.coordination.release_lease(identifier)

    def ledger_start(
        self, domain: str, max_concurrent: int, max_per_window: int, window: float
    ) -> LedgerAnswer:
        if self.coordination is None:
            return LedgerAnswer(True)
        return self.coordination.ledger_start(domain, max_concurrent, max_per_window, window)

    def ledger_done(self, domain: str, contacted: bool) -> None:
        if self.coordination is not None:
            self.coordination.ledger_done(domain, contacted)

    # -- assertions helpers -------------------------------------------------------------------

    @property
    def fetched_urls(self) -> list[str]:
        return [url for url, _ in self.fetch_log]

    def max_requests_in_window(self, domain: str, window: float) -> int:
        """The most request starts of ``domain`` inside any half-open window of that length."""
        return max_in_window(sorted(self.request_starts.get(domain, ())), window)


def max_in_window(starts: list[float], window: float) -> int:
    """The most of the sorted ``starts`` inside any half-open window ``[t, t + window)``."""
    best, left = 0, 0
    for right, t in enumerate(starts):
        while t - starts[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best
