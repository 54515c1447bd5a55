"""Start, use and stop the purgatory sync actor system (the embedding API).

    system = actors.system.start(ctx, SyncConfig(...), clock=GeventClock())
    system.enqueue_sync("my-repo", "synced")      # an event from a peer went to purgatory
    system.git_data_arrived("my-repo")            # a push landed
    system.status()                               # queue and per-domain figures
    system.history("my-repo")                     # why it is still held (S18.1)
    system.stop()                                 # reverse order; nothing left registered

The wiring is explicit and done once, here: frozen :class:`~actors.services.Services`, one
:class:`~actors.directory.Directory` with a factory per name, every actor bound to its name.
Start order is Supervisor → Releaser → Scheduler, each pinged so a broken start fails here;
DomainThrottles start lazily. Stop runs in reverse: Scheduler, DomainThrottles, FetchActors
(running fetches get ``stop_timeout`` seconds, then are cancelled), Releaser, Supervisor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pykka

from messages.history import SyncHistoryReport
from messages.lifecycle import Ping
from messages.releaser import EnqueuePending, GitDataArrived, ProcessResult, ProcessSatisfiable
from messages.scheduler import (
    EnqueueSync,
    GetSchedulerStatus,
    GetSyncHistory,
    SchedulerStatus,
    SyncReason,
)
from messages.supervisor import Shutdown
from messages.throttle import GetThrottleStatus, ThrottleStatus

from .clock import Clock, GeventClock
from .config import SyncConfig
from .context import SyncContext
from .directory import Directory, LiveEffects
from .domain import DomainThrottle
from .fetch import FetchActor
from .names import RELEASER, SCHEDULER, SUPERVISOR, parse_throttle_name, throttle_name
from .observer import SyncObserver
from .releaser import Releaser
from .runtime import tune_gc
from .scheduler import Scheduler
from .services import Services
from .supervisor import Supervisor
from .trace.recorder import NullTracer, Tracer

logger = logging.getLogger(__name__)

__all__ = ["SyncStatus", "SyncSystem", "start"]


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
    """Wire and start the actors in order; return the handle the relay embeds."""
    tune_gc()  # the actors allocate many short-lived objects: see runtime.GC_YOUNG_THRESHOLD
    services = Services(
        ctx,
        config or SyncConfig(),
        clock or GeventClock(),
        tracer or NullTracer(),
        observer or SyncObserver(),
    )
    directory = wire(services)
    system = SyncSystem(services, directory)
    try:
        for name in (SUPERVISOR, RELEASER, SCHEDULER):
            system.start_child(name)
    except Exception:
        system.stop()
        raise
    return system


def wire(services: Services) -> Directory:
    """A Directory that knows how to start every actor of the system (none started yet)."""
    directory = Directory(services)
    bind = directory.bind
    directory.define(SUPERVISOR, lambda: Supervisor.start(services, bind))
    directory.define(RELEASER, lambda: Releaser.start(services, bind))
    directory.define(SCHEDULER, lambda: Scheduler.start(services, bind))

    def throttle(name: str) -> pykka.ActorRef:
        domain = parse_throttle_name(name)
        assert domain is not None
        return DomainThrottle.start(services, bind, domain)

    directory.define_family(parse_throttle_name, throttle)
    directory.define_fetch(lambda name, first: FetchActor.start_with(first, services, bind, name))
    return directory


class SyncSystem:
    """The running system, as the relay sees it: a few verbs, status, and an ordered stop."""

    def __init__(self, services: Services, directory: Directory) -> None:
        self.services = services
        self.directory = directory
        self.outside: LiveEffects = directory.external()
        self.stopped = False

    @property
    def config(self) -> SyncConfig:
        return self.services.config

    def start_child(self, name: str) -> None:
        ref = self.directory.start(name)
        if ref is None:
            raise RuntimeError(f"no factory for {name}")
        self.outside.ask(name, Ping(), timeout=10)
        logger.debug("started %s", name)

    # -- the embedding API ---------------------------------------------------------------------

    def enqueue_sync(self, identifier: str, reason: SyncReason = "user") -> None:
        """An event of ``identifier`` entered purgatory; ``reason`` picks the delay (S4.2)."""
        self.outside.tell(SCHEDULER, EnqueueSync(identifier, reason))

    def git_data_arrived(self, identifier: str) -> None:
        """A push landed: the Releaser releases what is now satisfiable (S10.6)."""
        self.outside.tell(RELEASER, GitDataArrived(identifier))

    def release_now(self, identifier: str, timeout: float = 60.0) -> ProcessResult:
        """Ask the Releaser to release what is satisfiable now and wait for the result.

        For the relay's write path when an event arrives whose objects are already on disk:
        the single writer still does the writing (S8.1), the caller just waits for it.
        """
        result: ProcessResult = self.outside.ask(
            RELEASER, ProcessSatisfiable(identifier), timeout=timeout
        )
        return result

    def enqueue_pending(self) -> None:
        """Queue every identifier with held events (start-up after a restore, S9.1)."""
        self.outside.tell(RELEASER, EnqueuePending())

    def adopt_pending(self) -> None:
        """Another node stopped (S19.2): queue every held identifier this node does not queue
        yet; leases keep two survivors from syncing one identifier at once."""
        self.outside.tell(RELEASER, EnqueuePending(adopt=True))

    def status(self, limit: int = 10, timeout: float = 5.0) -> SyncStatus:
        scheduler = self.outside.ask(SCHEDULER, GetSchedulerStatus(limit), timeout=timeout)
        domains = []
        for domain in sorted(self.directory.throttle_domains()):
            try:
                msg = GetThrottleStatus()
                domains.append(
                    self.outside.ask(throttle_name(domain), msg, start=False, timeout=timeout)
                )
            except pykka.ActorDeadError:
                pass
        return SyncStatus(scheduler, tuple(domains))

    def history(
        self, identifier: str | None = None, limit: int = 50, timeout: float = 5.0
    ) -> SyncHistoryReport:
        """The sync history (S18.1): one identifier's, or the ``limit`` most relevant ones
        (held first, most recently attempted first), from the Scheduler."""
        msg = GetSyncHistory(identifier, limit)
        report: SyncHistoryReport = self.outside.ask(SCHEDULER, msg, timeout=timeout)
        return report

    def actor_names(self) -> list[str]:
        return self.directory.names()

    # -- stopping ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop everything in reverse start order; idempotent."""
        if self.stopped:
            return
        self.stopped = True
        directory, timeout = self.directory, self.config.stop_timeout
        self._tell_supervisor_to_stop_restarting()
        directory.close()
        self._stop(directory.lookup(SCHEDULER, start=False), timeout)
        for domain in directory.throttle_domains():
            self._stop(directory.lookup(throttle_name(domain), start=False), timeout)
        self._stop_fetch_actors(timeout)
        for name in (RELEASER, SUPERVISOR):
            self._stop(directory.lookup(name, start=False), timeout)
        leftover = [ref for ref in directory.refs() if ref.is_alive()]
        if leftover:
            logger.error("actors still running after stop: %s", leftover)
        self.services.tracer.close()

    def _tell_supervisor_to_stop_restarting(self) -> None:
        try:
            self.outside.ask(SUPERVISOR, Ping(), start=False, timeout=self.config.stop_timeout)
            self.outside.tell(SUPERVISOR, Shutdown())
        except (pykka.ActorDeadError, pykka.Timeout):
            pass

    def _stop_fetch_actors(self, timeout: float) -> None:
        """Give running fetches ``timeout`` seconds, cancel the rest, then stop every FetchActor
        (each still reports, so no throttle slot or queue entry is left dangling)."""
        work = self.directory.work
        if not work.join(timeout=timeout):
            logger.info("cancelling %d running fetches", len(work))
            work.kill(block=True, timeout=timeout)
        for ref in self.directory.fetch_actors():
            self._stop(ref, timeout)

    @staticmethod
    def _stop(ref: pykka.ActorRef | None, timeout: float) -> None:
        if ref is None:
            return
        try:
            ref.stop(block=True, timeout=timeout)
        except pykka.Timeout:
            logger.error("%s did not stop within %.1f s", ref, timeout)
