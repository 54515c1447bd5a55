"""Pure policy objects built from a SyncConfig, as the actors build them: no policy object has
defaults of its own (the SPEC numbers live in ``actors.config``)."""

from __future__ import annotations

from typing import Any

from actors.clock import Clock, FakeClock
from actors.config import SyncConfig
from actors.queue import SyncQueue
from actors.throttle import DomainThrottleState, ThrottleManager


def manager(clock: Clock | None = None, **limits: Any) -> ThrottleManager:
    """The seed's ThrottleManager with the SPEC limits, or those given (``max_concurrent=1``)."""
    return ThrottleManager.from_config(SyncConfig(**limits), clock or FakeClock())


def domain_state(domain: str, **limits: Any) -> DomainThrottleState:
    return DomainThrottleState.from_config(domain, SyncConfig(**limits))


def queue(**config: Any) -> SyncQueue:
    return SyncQueue(SyncConfig(**config).backoff_scale)
