"""Drive a whole actor system from a test: start it, wait until it is quiet, move fake time."""

from __future__ import annotations

import time

import gevent
import pykka

from actors import system as actor_system
from actors.domain import ThrottleClient
from actors.effects import Envelope
from messages.lifecycle import Ping


class Harness:
    """One running system plus helpers to wait until it is quiet."""

    def __init__(self, ctx, config, clock, tracer=None, observer=None):
        self.ctx, self.config, self.clock = ctx, config, clock
        self.tracer = tracer
        self.system = actor_system.start(ctx, config, clock, tracer=tracer, observer=observer)
        self.directory = self.system.directory

    def outside(self, sender: str = "test"):
        """Effects for the test as a sender outside the system (tell/ask by name)."""
        return self.directory.external(sender)

    def client(self, identifier: str | None = None) -> ThrottleClient:
        """The throttle client a FetchActor uses, speaking for the test."""
        return ThrottleClient(self.outside(), identifier)

    def settle(self, timeout: float = 5.0) -> None:
        """Return once no FetchActor runs and every inbox has been drained twice in a row.

        Each Ping is a barrier for one inbox (FIFO); fetch work shows in ``directory.work``.
        """
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while quiet_rounds < 2:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"system not quiet after {timeout} s: {self.directory.fetch_actors()}"
                )
            busy = bool(self.directory.fetch_actors()) or len(self.directory.work) > 0
            for ref in self.directory.refs():
                try:
                    ref.ask(_ping(), timeout=timeout)
                except pykka.ActorDeadError:
                    pass  # waiting for its restart timer
            quiet_rounds = 0 if busy else quiet_rounds + 1
            if busy:
                gevent.sleep(0.001)

    def enqueue(self, identifier: str, reason: str = "synced") -> None:
        """Tell the Scheduler and wait until it has taken the message (at the current time);
        the test's SyncConfig turns ``reason`` into the delay (S4.2)."""
        self.system.enqueue_sync(identifier, reason)
        self.settle()

    def advance(self, seconds: float) -> None:
        """FakeClock only: move time (firing timers), then wait for the consequences."""
        self.clock.advance(seconds)
        self.settle()

    def status(self):
        return self.system.status()


def _ping() -> Envelope:
    return Envelope("test", Ping(), ask=True, traced=False)
