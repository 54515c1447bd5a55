"""The numbers the actor system runs by (SPEC S4, S6, S12), in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SyncConfig"]


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """Defaults are the SPEC's; the relay builds one from its command line (S12)."""

    tick_interval: float = 1.0  # --sync-loop-interval-ms (S4.4)
    max_concurrent: int = 5  # --sync-domain-concurrent (S6.1)
    max_per_minute: int = 30  # --sync-domain-rate-limit (S6.1)
    rate_window: float = 60.0  # the sliding window of S6.1; shortened only by benchmarks
    default_delay: float = 180.0  # --sync-default-delay-secs (S4.2)
    immediate_delay: float = 0.5  # --sync-immediate-delay-ms (S4.2)
    precise_wakeups: bool = True  # S4.4 wake-up at the earliest next_attempt; off = tick only
    backoff_scale: float = 1.0  # multiplies the 20/40/80/120 s backoff; < 1 only in tests
    max_running_syncs: int = 256  # FetchActors on the main path at once (memory bound)
    restart_backoff_min: float = 0.05  # Supervisor: first restart delay
    restart_backoff_max: float = 5.0  # Supervisor: cap of the doubling restart delay
    stop_timeout: float = 10.0  # how long stop() waits for running fetches before cancelling

    def __post_init__(self) -> None:
        for name in ("tick_interval", "rate_window", "restart_backoff_max", "stop_timeout", "backoff_scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("max_concurrent", "max_per_minute", "max_running_syncs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.default_delay < 0 or self.immediate_delay < 0:
            raise ValueError("delays cannot be negative")
