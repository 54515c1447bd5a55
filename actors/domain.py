"""DomainThrottle actors (one per remote host) and the router FetchActors reach them through.

A DomainThrottle MUST: answer ``TryStart`` by checking and starting in one step (S6.4); start
as many queued identifiers as capacity allows on every trigger — enqueue, completion, and the
rate window freeing up (S6.3); clear an identifier's ``in_progress`` before picking the next.
It MUST NOT do I/O or ask anyone: FetchActors do the fetching with the slot it reserved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import pykka

from messages.fetch import FetchFromDomain
from messages.throttle import (
    EnqueueIdentifier,
    GetThrottleStatus,
    IsThrottled,
    QueuedFetchDone,
    RequestDone,
    SlotFreed,
    ThrottleStatus,
    TryStart,
    WindowFreed,
)

from .base import BaseActor, Runtime
from .throttle import DomainThrottleState

logger = logging.getLogger(__name__)

__all__ = ["DomainThrottle", "ThrottleClient", "ThrottleRouter", "throttle_name"]


def throttle_name(domain: str) -> str:
    return f"DomainThrottle[{domain}]"


class DomainThrottle(BaseActor):
    handlers = {
        TryStart: "on_try_start",
        IsThrottled: "on_is_throttled",
        RequestDone: "on_request_done",
        SlotFreed: "on_slot_freed",
        EnqueueIdentifier: "on_enqueue",
        QueuedFetchDone: "on_queued_done",
        WindowFreed: "on_window_freed",
        GetThrottleStatus: "on_status",
    }

    def __init__(self, runtime: Runtime, domain: str) -> None:
        super().__init__(runtime, throttle_name(domain))
        config = runtime.config
        self.state = DomainThrottleState(
            domain, config.max_concurrent, config.max_per_minute, config.rate_window
        )

    def on_try_start(self, msg: TryStart, now: float) -> bool:
        granted = self.state.try_start(now)
        self._changed(now)
        return granted

    def on_is_throttled(self, msg: IsThrottled, now: float) -> bool:
        if msg.identifier is not None and self.state.has_queued_identifier(msg.identifier):
            return True
        return not self.state.has_capacity(now)

    def on_request_done(self, msg: RequestDone, now: float) -> None:
        self.state.complete_request(now)
        self._pump(now)

    def on_slot_freed(self, msg: SlotFreed, now: float) -> None:
        self.state.release_slot(msg.identifier, now)
        self._pump(now)

    def on_enqueue(self, msg: EnqueueIdentifier, now: float) -> None:
        self.state.enqueue_identifier(msg.identifier, msg.tried_urls)
        self._pump(now)

    def on_queued_done(self, msg: QueuedFetchDone, now: float) -> None:
        self.state.finish_queued(msg.identifier, msg.url, now)
        self._pump(now)

    def on_window_freed(self, msg: WindowFreed, now: float) -> None:
        self._pump(now)

    def on_status(self, msg: GetThrottleStatus, now: float) -> ThrottleStatus:
        state = self.state
        return ThrottleStatus(
            state.domain,
            state.in_flight,
            state.queued,
            state.window_used(now),
            state.max_concurrent,
            state.max_per_minute,
        )

    def _pump(self, now: float) -> None:
        for identifier, tried in self.state.dispatch_ready(now):
            logger.debug("%s: dispatching queued %s", self.name, identifier)
            self.runtime.spawn_fetch(
                self.name, FetchFromDomain(self.state.domain, identifier, tried)
            )
        self._changed(now)

    def _changed(self, now: float) -> None:
        state = self.state
        wake = state.wake_at(now)
        if wake is None:
            self.disarm("window")
        else:
            self.arm("window", wake, WindowFreed(), now)
        self.runtime.observer.throttle_changed(
            state.domain, state.in_flight, state.queued, state.window_used(now)
        )


class ThrottleRouter:
    """The ThrottleManager of the actor system: starts one DomainThrottle per domain lazily and
    finds the live one by name (a dead or replaced throttle is started afresh, empty)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()

    def ref(self, domain: str, create: bool = True) -> pykka.ActorRef | None:
        name = throttle_name(domain)
        with self._lock:
            ref = self.runtime.refs.get(name)
            if ref is not None and ref.is_alive():
                return ref
            if not create:
                return None
            ref = DomainThrottle.start(self.runtime, domain)
            self.runtime.register(name, ref)
            self.runtime.factories[name] = lambda: self.restart(domain)
            return ref

    def restart(self, domain: str) -> pykka.ActorRef:
        ref = self.ref(domain)
        assert ref is not None
        return ref

    def domains(self) -> list[str]:
        prefix, suffix = "DomainThrottle[", "]"
        return [n[len(prefix) : -len(suffix)] for n in self.runtime.refs if n.startswith(prefix)]

    def client(self, sender: str, identifier: str | None = None) -> ThrottleClient:
        return ThrottleClient(self, sender, identifier)


class ThrottleClient:
    """The throttle object the sync functions get inside a FetchActor (same four methods as
    :class:`~actors.throttle.ThrottleManager`), speaking to DomainThrottle actors."""

    def __init__(self, router: ThrottleRouter, sender: str, identifier: str | None = None) -> None:
        self.router = router
        self.sender = sender
        self.identifier = identifier  # the main-path identifier this client syncs, if any

    def is_throttled(self, domain: str) -> bool:
        ref = self.router.ref(domain, create=False)
        if ref is None:
            return False
        try:
            return bool(self.router.runtime.ask(self.sender, ref, IsThrottled(self.identifier)))
        except pykka.ActorDeadError:
            return False

    def start_request(self, domain: str) -> bool:
        for _ in range(2):  # once more if the throttle died between lookup and ask
            ref = self.router.ref(domain)
            try:
                return bool(self.router.runtime.ask(self.sender, ref, TryStart()))
            except pykka.ActorDeadError:
                continue
        return False

    def complete_request(self, domain: str) -> None:
        self.router.runtime.tell(self.sender, self.router.ref(domain), RequestDone())

    def enqueue_identifier(self, domain: str, identifier: str, tried_urls: Iterable[str]) -> None:
        msg = EnqueueIdentifier(identifier, frozenset(tried_urls))
        self.router.runtime.tell(self.sender, self.router.ref(domain), msg)
