"""What the actors report to the outside (metrics, status page), as no-op hooks.

Mopidy's listener habit: one class with a documented no-op method per event; whoever cares
(the relay's Prometheus metrics) overrides what it needs. Hooks are called from actor
greenlets, must be quick, and must not call back into the actors.
"""

from __future__ import annotations

from messages.releaser import ProcessResult

__all__ = ["SyncObserver"]


class SyncObserver:
    def queue_size(self, size: int) -> None:
        """The sync queue now holds ``size`` identifiers (S13.1 purgatory_sync_queue_size)."""

    def sync_attempt(self, identifier: str) -> None:
        """The Scheduler started a main-path sync of ``identifier``."""

    def sync_finished(self, identifier: str, complete: bool) -> None:
        """A main-path sync ended."""

    def fetch_done(
        self, domain: str, seconds: float, oids_fetched: int, error_reason: str | None
    ) -> None:
        """One request to a remote ended (``error_reason`` None on success)."""

    def throttle_changed(self, domain: str, in_flight: int, queued: int, window_used: int) -> None:
        """A DomainThrottle's counters changed."""

    def released(self, identifier: str, result: ProcessResult) -> None:
        """The Releaser finished a pass for ``identifier``."""
