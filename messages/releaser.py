"""What the Releaser's inbox accepts, and its reply type (ARCHITECTURE §3, SPEC S8)."""

from __future__ import annotations

from ._base import message


@message
class ProcessSatisfiable:
    """Release every held event of ``identifier`` whose objects are present (S5.4, S8).

    Asked, the reply is a :class:`ProcessResult`; told (a sync's first release, which nobody
    waits for), the same work is done and the result only logged.
    """

    identifier: str


@message
class GitDataArrived:
    """A push landed for ``identifier``: release what is now satisfiable (S10.6)."""

    identifier: str


@message
class ProcessResult:
    """What one release pass did (S8.5)."""

    states_released: int = 0
    prs_released: int = 0
    repos_synced: int = 0
    errors: tuple[str, ...] = ()

    @property
    def released_any(self) -> bool:
        return bool(self.states_released or self.prs_released)

    def merge(self, other: ProcessResult) -> ProcessResult:
        return ProcessResult(
            self.states_released + other.states_released,
            self.prs_released + other.prs_released,
            self.repos_synced + other.repos_synced,
            self.errors + other.errors,
        )


@message
class EnqueuePending:
    """Re-enqueue every identifier that still has held events (after a Scheduler restart, and
    at start-up after purgatory is restored: S9.1). ``adopt``: another node stopped (S19.2),
    so its held events need a node; only identifiers the Scheduler does not queue are added."""

    adopt: bool = False


ReleaserMsg = ProcessSatisfiable | GitDataArrived | EnqueuePending
