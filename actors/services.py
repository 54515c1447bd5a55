"""What every actor of one system is handed, fully built before the first actor starts."""

from __future__ import annotations

from dataclasses import dataclass

from .clock import Clock
from .config import SyncConfig
from .context import SyncContext
from .observer import SyncObserver
from .trace.recorder import NullTracer, Tracer

__all__ = ["Services"]


@dataclass(frozen=True, slots=True)
class Services:
    """The port, the numbers, the clock, the trace recorder and the observer of one system.

    Frozen: an actor reads its collaborators here and never finds one swapped or missing, and
    replay builds the same object around a replay port and a fake clock.
    """

    ctx: SyncContext
    config: SyncConfig
    clock: Clock
    tracer: Tracer = NullTracer()
    observer: SyncObserver = SyncObserver()
