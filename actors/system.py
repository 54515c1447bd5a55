"""Start, use and stop the purgatory sync actor system (the embedding API).

    system = actors.system.start(ctx, SyncConfig(...), clock=GeventClock())
    system.enqueue_sync("my-repo", delay=0.5)     # an event went to purgatory
    system.git_data_arrived("my-repo")            # a push landed
    system.status()                               # queue and per-domain figures
    system.stop()                                 # reverse order; nothing left registered

Start order is Supervisor → Releaser → Scheduler, each pinged so a broken start fails here;
DomainThrottles start lazily. Stop runs in reverse: Scheduler, DomainThrottles, FetchActors
(running fetches get ``stop_timeout`` seconds, then are cancelled), Releaser, Supervisor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pykka

from messages.lifecycle import Ping
from messages.releaser import EnqueuePending, GitDataArrived, ProcessResult, ProcessSatisfiable
from messages.scheduler import EnqueueSync, GetSchedulerStatus, SchedulerStatus
from messages.supervisor import Shutdown
from messages.throttle import GetThrottleStatus, ThrottleStatus

from .base import Runtime
from .clock import Clock, GeventClock
from .config import SyncConfig
from .context import SyncContext
from .domain import ThrottleRouter
from .fetch import spawn_fetch, stop_fetch_actors
from .observer import SyncObserver
from .releaser import Releaser
from .scheduler import Scheduler
from .supervisor import Supervisor
from .tracing import Tracer

logger = logging.getLogger(__name__)

__all__ = ["SyncStatus", "SyncSystem", "start"]

EXTERNAL = "relay"  # the sender name of messages from outside the actor system


@dataclass(frozen=True)
class SyncStatus:
    scheduler: SchedulerStatus
    domains: tuple[ThrottleStatus, ...] = field(default_factory=tuple)

    @property
    def queue_size(self) -> int:
        return self.scheduler.queue_size


def start(
    ctx: SyncContext,
    config: SyncConfig | None = None,
    clock: Clock | None = None,
    tracer: Tracer | None = None,
    observer: SyncObserver | None = None,
) -> SyncSystem:
    """Start the actors in order and return the handle the relay embeds."""
    runtime = Runtime(ctx, config or SyncConfig(), clock or GeventClock(), tracer, observer)
    runtime.spawn_fetch = lambda sender, msg: spawn_fetch(runtime, sender, msg)
    runtime.throttles = ThrottleRouter(runtime)
    system = SyncSystem(runtime)
    try:
        for name, actor_class in (
            ("Supervisor", Supervisor),
            ("Releaser", Releaser),
            ("Scheduler", Scheduler),
        ):
            system._start_child(name, actor_class)
    except Exception:
        system.stop()
        raise
    return system


class SyncSystem:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stopped = False

    def _start_child(self, name: str, actor_class: type) -> pykka.ActorRef:
        def factory() -> pykka.ActorRef:
            ref = actor_class.start(self.runtime, name)
            self.runtime.register(name, ref)
            return ref

        if name != "Supervisor":
            self.runtime.factories[name] = factory
        ref = factory()
        self.runtime.ask(EXTERNAL, ref, Ping(), timeout=10)
        logger.debug("started %s", name)
        return ref

    # -- the embedding API ---------------------------------------------------------------------

    def enqueue_sync(self, identifier: str, delay: float | None = None) -> None:
        """An event of ``identifier`` entered purgatory (S4.2: the default delay is the user one)."""
        if delay is None:
            delay = self.runtime.config.default_delay
        self.runtime.tell(EXTERNAL, "Scheduler", EnqueueSync(identifier, delay))

    def git_data_arrived(self, identifier: str) -> None:
        """A push landed: the Releaser releases what is now satisfiable (S10.6)."""
        self.runtime.tell(EXTERNAL, "Releaser", GitDataArrived(identifier))

    def release_now(self, identifier: str, timeout: float = 60.0) -> ProcessResult:
        """Ask the Releaser to release what is satisfiable now and wait for the result.

        For the relay's write path when an event arrives whose objects are already on disk:
        the single writer still does the writing (S8.1), the caller just waits for it.
        """
        return self.runtime.ask(EXTERNAL, "Releaser", ProcessSatisfiable(identifier), timeout=timeout)

    def enqueue_pending(self) -> None:
        """Queue every identifier with held events (start-up after a restore, S9.1)."""
        self.runtime.tell(EXTERNAL, "Releaser", EnqueuePending())

    def status(self, limit: int = 10, timeout: float = 5.0) -> SyncStatus:
        runtime = self.runtime
        scheduler = runtime.ask(EXTERNAL, "Scheduler", GetSchedulerStatus(limit), timeout=timeout)
        domains = []
        for domain in sorted(runtime.throttles.domains()):
            ref = runtime.throttles.ref(domain, create=False)
            if ref is not None:
                try:
                    domains.append(runtime.ask(EXTERNAL, ref, GetThrottleStatus(), timeout=timeout))
                except pykka.ActorDeadError:
                    pass
        return SyncStatus(scheduler, tuple(domains))

    def stop(self) -> None:
        """Stop everything in reverse start order; idempotent."""
        if self.stopped:
            return
        self.stopped = True
        runtime = self.runtime
        timeout = runtime.config.stop_timeout
        self._stop_named("Supervisor", Shutdown())
        self._stop_ref(runtime.refs.get("Scheduler"), timeout)
        for domain in runtime.throttles.domains() if runtime.throttles else []:
            self._stop_ref(runtime.refs.get(f"DomainThrottle[{domain}]"), timeout)
        stop_fetch_actors(runtime, timeout)
        for name in ("Releaser", "Supervisor"):
            self._stop_ref(runtime.refs.get(name), timeout)
        ours = {id(ref) for ref in runtime.refs.values()} | {id(r) for r in runtime.fetch_actors}
        leftover = [ref for ref in pykka.ActorRegistry.get_all() if id(ref) in ours]
        if leftover:
            logger.error("actors still running after stop: %s", leftover)
        runtime.tracer.close()

    def _stop_named(self, name: str, msg: Any) -> None:
        ref = self.runtime.refs.get(name)
        if ref is not None and ref.is_alive():
            try:
                self.runtime.ask(EXTERNAL, ref, Ping(), timeout=self.runtime.config.stop_timeout)
                self.runtime.tell(EXTERNAL, ref, msg)
            except (pykka.ActorDeadError, pykka.Timeout):
                pass

    @staticmethod
    def _stop_ref(ref: pykka.ActorRef | None, timeout: float) -> None:
        if ref is None:
            return
        try:
            ref.stop(block=True, timeout=timeout)
        except pykka.Timeout:
            logger.error("%s did not stop within %.1f s", ref, timeout)
