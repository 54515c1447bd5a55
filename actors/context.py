"""The port between the actors and the world (ARCHITECTURE §4).

Actors know git servers, repositories and purgatory only through a :class:`SyncContext`.
``grasp.context.RealSyncContext`` implements it over the purgatory store, the event store and
dulwich; ``actors.fakes.MockSyncContext`` implements it for unit tests. Both honour the same
contract (``tests/actors/test_port_contract.py``).

Failures at the port are typed: a fetch that fails for a reason of the world's making (a dead
server, a refused URL, a pack over the cap) raises :class:`FetchFailed`. That is the only
exception the sync functions catch; anything else a port method raises is a bug, which the
FetchActor logs once with its traceback and the Scheduler's backoff retries.

A fetch that works answers one typed :class:`FetchResult`: the OIDs that arrived, how many
needed ones the server did not have, and how many bytes of packs it stored (S18.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from messages.port import AnnouncementInfo, FetchResult, LedgerAnswer, RepositoryData
from messages.releaser import ProcessResult
from messages.scheduler import RELEASE_FAILED

__all__ = [
    "ATTEMPT_REASONS",
    "TransferEnd",
    "FETCH_FAILURE_REASONS",
    "MISSING_OBJECTS",
    "NOTHING_ABSENT",
    "AnnouncementInfo",
    "FetchFailed",
    "FetchResult",
    "LEASED",
    "LedgerAnswer",
    "ProcessResult",
    "RepositoryData",
    "SyncContext",
]

#: The kinds of fetch failure (S7.2); ``missing_objects`` is not one: a server that answers
#: without the needed objects fetched nothing, which is a result (``FetchResult.missing``),
#: not a failure.
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


#: Why a request did not bring everything it was asked for (S18.1): a failure kind, or the
#: server answered without some of the needed objects.
MISSING_OBJECTS = "missing_objects"
ATTEMPT_REASONS = FETCH_FAILURE_REASONS | {MISSING_OBJECTS, RELEASE_FAILED}

#: The end of a request that was never made: nothing it was to ask for was absent (the relay
#: counts present objects as needed, S2.3), so the port asked the network nothing. Not an
#: attempt (S18.1), and the remote saw nothing (S6.1).
NOTHING_ABSENT = "nothing_absent"


#: Called by ``fetch_oids`` when the remote has sent its last byte (S6.1: the request is over
#: as the remote sees it): at most once, before ``fetch_oids`` returns or raises.
TransferEnd = Callable[[], None]


#: Why a sync did not run (``SyncFinished.reason``): another node holds the identifier's lease
#: (S19.2). Not a failure: the Scheduler tries again soon, without backoff growth.
LEASED = "leased"


class FetchFailed(Exception):
    """A fetch from ``url`` failed; ``reason`` is one of :data:`FETCH_FAILURE_REASONS`.

    ``str()`` names the URL and the reason, so a log line needs nothing else. ``started`` and
    ``seconds`` time the failed request as :class:`FetchResult` times a successful one: the
    port leaves them None, the actor's traced port fills them in.
    """

    def __init__(
        self,
        url: str,
        reason: str,
        detail: str = "",
        *,
        started: float | None = None,
        seconds: float | None = None,
    ) -> None:
        if reason not in FETCH_FAILURE_REASONS:
            raise ValueError(f"unknown fetch failure reason {reason!r}")
        super().__init__(url, reason, detail)
        self.url, self.reason, self.detail = url, reason, detail
        self.started, self.seconds = started, seconds

    def __str__(self) -> str:
        text = f"fetch from {self.url} failed ({self.reason})"
        return f"{text}: {self.detail}" if self.detail else text


@runtime_checkable
class SyncContext(Protocol):
    """Everything purgatory sync asks of the outside world.

    ``fetch_oids`` blocks (network), answers a :class:`FetchResult` and raises
    :class:`FetchFailed` on failure. When the last response of its last request to the remote
    is complete it calls ``on_transfer_end`` (if given), once, before indexing what arrived, so
    the caller can free the domain's slot while the pack is indexed (a port that cannot tell
    never calls it: then returning or raising is the end); the other
    methods are quick reads except ``process_satisfiable_events``, which writes refs and events
    and is therefore only ever called by the single Releaser (S8.1).
    """

    def fetch_repository_data(self, identifier: str) -> RepositoryData: ...

    def collect_needed_oids(self, identifier: str) -> set[str]: ...

    def fetch_oids(
        self,
        repo_path: Path,
        url: str,
        oids: Sequence[str],
        on_transfer_end: TransferEnd | None = None,
    ) -> FetchResult: ...

    def process_satisfiable_events(self, identifier: str) -> ProcessResult: ...

    def has_pending_events(self, identifier: str) -> bool: ...

    def find_target_repo(self, data: RepositoryData) -> Path | None: ...

    def our_domain(self) -> str | None: ...

    def pending_identifiers(self) -> list[str]: ...

    # -- cluster coordination (S19.2); a single process grants everything -----------------

    def take_lease(self, identifier: str) -> bool:
        """Hold ``identifier`` for a sync on this node; False while another node holds it.
        Re-entrant on one node; renewed by the port while held, expires with a dead node."""
        ...

    def release_lease(self, identifier: str) -> None: ...

    def ledger_start(
        self, domain: str, max_concurrent: int, max_per_window: int, window: float
    ) -> LedgerAnswer:
        """Check-and-start one request of ``domain`` in the ledger shared by every node, in one
        atomic step (S6.4 summed over nodes): in flight until :meth:`ledger_done`, then in the
        window until ``window`` seconds after it ended."""
        ...

    def ledger_done(self, domain: str, contacted: bool) -> None:
        """One of this node's requests of ``domain`` ended; ``contacted`` False: it never
        reached the remote (fetch policy), so it leaves no window entry."""
        ...
