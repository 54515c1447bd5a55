"""Actor tests: start a system over a MockSyncContext, drive it, and always stop it."""

from __future__ import annotations

import time

import pykka
import pytest

from actors import system as actor_system
from actors.clock import FakeClock, GeventClock
from actors.config import SyncConfig
from actors.tracing import MemoryTracer
from messages.lifecycle import Ping


class Harness:
    """One running system plus helpers to wait until it is quiet."""

    def __init__(self, ctx, config, clock, tracer=None, observer=None):
        self.ctx, self.config, self.clock = ctx, config, clock
        self.tracer = tracer
        self.system = actor_system.start(ctx, config, clock, tracer=tracer, observer=observer)
        self.runtime = self.system.runtime

    def settle(self, timeout: float = 5.0) -> None:
        """Return once no FetchActor runs and every inbox has been drained twice in a row.

        Each Ping is a barrier for one inbox (FIFO); fetch work shows in ``runtime.work``.
        """
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while quiet_rounds < 2:
            if time.monotonic() > deadline:
                raise AssertionError(f"system not quiet after {timeout} s: {self.runtime.fetch_actors}")
            busy = bool(self.runtime.fetch_actors) or len(self.runtime.work) > 0
            for ref in list(self.runtime.refs.values()):
                try:
                    ref.ask(_ping(), timeout=timeout)
                except pykka.ActorDeadError:
                    busy = True  # being restarted
            quiet_rounds = 0 if busy else quiet_rounds + 1
            if busy:
                import gevent

                gevent.sleep(0.001)

    def enqueue(self, identifier: str, delay: float) -> None:
        """Tell the Scheduler and wait until it has taken the message (at the current time)."""
        self.system.enqueue_sync(identifier, delay)
        self.settle()

    def advance(self, seconds: float) -> None:
        """FakeClock only: move time (firing timers), then wait for the consequences."""
        self.clock.advance(seconds)
        self.settle()

    def status(self):
        return self.system.status()


def _ping():
    from actors.base import Envelope

    return Envelope("test", Ping(), ask=True)


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
