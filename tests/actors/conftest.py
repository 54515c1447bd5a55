"""Actor tests: start a system over a MockSyncContext, drive it, and always stop it."""

from __future__ import annotations

import pytest

from actors.clock import FakeClock, GeventClock
from actors.config import SyncConfig
from actors.trace.recorder import MemoryTracer
from tests.support.actor_harness import Harness


@pytest.fixture
def fake_clock():
    return FakeClock(start=1000.0)


@pytest.fixture
def start_system():
    """Factory: ``start_system(ctx, clock=..., tracer=..., **config)``; stops everything after."""
    harnesses: list[Harness] = []

    def factory(ctx, clock=None, tracer=None, observer=None, **config):
        harness = Harness(
            ctx, SyncConfig(**config), clock or GeventClock(), tracer=tracer, observer=observer
        )
        harnesses.append(harness)
        return harness

    yield factory
    for harness in harnesses:
        harness.system.stop()


@pytest.fixture
def memory_tracer():
    return MemoryTracer()
