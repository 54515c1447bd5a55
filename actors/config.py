"""The numbers the actor system runs by (SPEC S4, S6, S12): their one home.

Every SPEC default of purgatory sync lives here and nowhere else: the relay's options default
to these fields (``grasp.relay.config``), and no policy object has defaults of its own. Values
are seconds (the CLI converts milliseconds once, when it parses them).
"""

from __future__ import annotations

from dataclasses import dataclass

from messages.scheduler import SYNC_REASONS, SyncReason

from .concurrency import AdaptiveCap, FixedCap, RunningCap

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "SyncConfig"]

#: S4.1: the retry backoff 20 s × 2^min(max(n−1, 0), 3), capped at 120 s.
BACKOFF_BASE = 20.0
BACKOFF_CAP = 120.0


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """Defaults are the SPEC's; the relay builds one from its command line (S12)."""

    tick_interval: float = 1.0  # --sync-loop-interval-ms (S4.4)
    max_concurrent: int = 5  # --sync-domain-concurrent (S6.1)
    max_per_minute: int = 30  # --sync-domain-rate-limit (S6.1)
    rate_window: float = 60.0  # the sliding window of S6.1; shortened only by benchmarks
    user_delay: float = 180.0  # --sync-default-delay-secs (S4.2): a push usually follows
    synced_delay: float = 0.5  # --sync-immediate-delay-ms (S4.2): also after a restart
    precise_wakeups: bool = True  # S4.4 wake-up at the earliest next_attempt; off = tick only
    backoff_scale: float = 1.0  # multiplies the S4.1 backoff; < 1 only in tests
    max_running_syncs: int = 256  # FetchActors on the main path at once (memory bound)
    #: --sync-adaptive-running: the cap moves between ``min_running_syncs`` and
    #: ``max_running_syncs`` by the Scheduler's lateness (actors.concurrency), starting at
    #: ``start_running_syncs`` (clipped into that range); off: ``max_running_syncs`` fixed
    adaptive_running: bool = False
    min_running_syncs: int = 4
    start_running_syncs: int = 16
    restart_backoff_min: float = 0.05  # Supervisor: first restart delay
    restart_backoff_max: float = 5.0  # Supervisor: cap of the doubling restart delay
    stop_timeout: float = 10.0  # how long stop() waits for running fetches before cancelling
    history_attempts: int = 20  # --sync-history-attempts: attempts kept per identifier (S18.1)
    history_identifiers: int = 1000  # --sync-history-identifiers: identifiers with a history
    lease_retry: float = 1.0  # S19.2: retry of an identifier another node holds the lease of
    #: the Scheduler's safety-net retry of a sync left to its domains' queues (S5.3), scaled
    #: by ``backoff_scale`` (deviation from S4.5's 20 s backoff: SyncQueue.hand_over says why)
    handover_retry: float = BACKOFF_CAP

    def __post_init__(self) -> None:
        positive = (
            "tick_interval",
            "rate_window",
            "restart_backoff_max",
            "stop_timeout",
            "backoff_scale",
            "lease_retry",
            "handover_retry",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        at_least_one = (
            "max_concurrent",
            "max_per_minute",
            "max_running_syncs",
            "min_running_syncs",
            "start_running_syncs",
            "history_attempts",
            "history_identifiers",
        )
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.adaptive_running and self.min_running_syncs > self.max_running_syncs:
            raise ValueError("min_running_syncs cannot exceed max_running_syncs")
        if self.user_delay < 0 or self.synced_delay < 0:
            raise ValueError("delays cannot be negative")

    def running_cap(self) -> RunningCap:
        """A new policy for how many main-path syncs run at once (the Scheduler owns it)."""
        if not self.adaptive_running:
            return FixedCap(self.max_running_syncs)
        return AdaptiveCap(self.start_running_syncs, self.min_running_syncs, self.max_running_syncs)

    def delay_for(self, reason: SyncReason) -> float:
        """S4.2: how long after an event of this origin its identifier's sync is tried."""
        if reason not in SYNC_REASONS:
            raise ValueError(f"unknown sync reason {reason!r}")
        return self.user_delay if reason == "user" else self.synced_delay
