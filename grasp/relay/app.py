"""The GRASP relay process: where the domain and the actor system meet (ARCHITECTURE §6).

Start order, each step checked before the next (Mopidy's habit): data directory → event store
→ purgatory (S9.1: downtime credited to the held deadlines, the cache rebuilt from the event
database, an old ``purgatory-state.json`` imported once) → listening socket → actor system
(pinged) → server; then every restored identifier is queued again. Shutdown runs backwards:
stop accepting and close websockets → stop the actors (reverse start order) → last heartbeat
→ close the store. Nothing of purgatory needs saving at the end: every held event was
committed before its ``OK``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from actors import system as actor_system
from actors.clock import Clock
from actors.observer import SyncObserver
from grasp.git import PushesInFlight, remove_interrupted_work
from grasp.git.repo_pool import EmptyRepoPool
from grasp.purgatory import STATE_FILENAME, PurgatoryStore
from grasp.relay import assembly
from grasp.relay.assembly import Coordination, fetch_settings, sync_config
from grasp.relay.config import Config
from grasp.relay.fetch_checks import warn_unfetchable_sources
from grasp.relay.heartbeat import Heartbeat
from grasp.relay.maintenance import PurgatorySweeper
from grasp.relay.observe.metrics import SyncMetrics
from grasp.relay.observe.status import StatusBoard
from grasp.relay.peers.network import PeerNetwork
from grasp.relay.sync_sources.settings import SyncSourceSettings
from grasp.relay.sync_sources.source import SyncSources
from grasp.relay.transport.server import (
    Relay,
    StartupError,
    build_app,
    open_store,
    prepare_data_dir,
)
from grasp.repositories import RepositoryIndex
from grasp.store.cluster import LocalCoordination

if TYPE_CHECKING:
    from grasp.store.fanout import ClusterFanout

logger = logging.getLogger(__name__)

__all__ = ["GraspRelay", "StartupError", "fetch_settings", "open_grasp_relay", "sync_config"]


@dataclass
class GraspRelay:
    """A bound GRASP relay with its purgatory and running actor system."""

    relay: Relay
    purgatory: PurgatoryStore
    index: RepositoryIndex
    system: actor_system.SyncSystem
    sweeper: PurgatorySweeper
    sync_sources: SyncSources
    metrics: SyncMetrics
    board: StatusBoard
    heartbeat: Heartbeat
    restored: list[str] = field(default_factory=list)
    #: Cluster mode (S19.2): LISTEN/NOTIFY fan-out to and from the other nodes.
    fanout: ClusterFanout | None = None
    #: GRASP-02 peers (S17); also the write policy every event passes through.
    peers: PeerNetwork | None = None
    #: S19.2: identifier leases and the throttle ledger (in PostgreSQL on a cluster).
    coordination: Coordination = field(default_factory=LocalCoordination)
    #: P7: held announcements' empty repositories, made ahead of need (grasp/git/repo_pool.py).
    repo_pool: EmptyRepoPool | None = None

    @property
    def config(self) -> Config:
        return self.relay.config

    @property
    def http_url(self) -> str:
        return self.relay.http_url

    @property
    def state_file(self) -> Path:
        return self.config.data_dir / STATE_FILENAME

    def start(self) -> None:
        if self.restored:
            logger.info("re-queueing %d restored identifiers", len(self.restored))
            self.system.enqueue_pending()  # S9.1: states and PRs alike
        self.sweeper.request_cleanup()  # placeholders that expired before a crash (S14.3)
        self.heartbeat.start()
        self.sweeper.start()
        if self.fanout is not None:
            self.fanout.start()
        self.coordination.start()
        if self.repo_pool is not None:
            self.repo_pool.start()
        self.relay.start()
        logger.info(
            "started: %d events stored in %s, purgatory %s, actors %s, %d sync sources",
            self.relay.store.count(),
            self.relay.store.location,  # never the password (S19.1)
            self.purgatory.counts(),
            ", ".join(self.system.actor_names()),
            len(self.sync_sources),
        )
        warn_unfetchable_sources(self.config.sync_sources, fetch_settings(self.config)[0])
        self.sync_sources.start()
        if self.peers is not None:
            self.peers.start()

    def shutdown(self, timeout: float = 5.0) -> None:
        """SIGTERM/SIGINT: stop taking events (sync sources, then clients), stop the actors in
        reverse start order, write the last heartbeat, close the store. Purgatory is already
        in the database (S9.1); the last beat says downtime starts now."""
        self.sync_sources.stop(timeout)
        if self.peers is not None:
            self.peers.stop(timeout)
        self.relay.stop_serving(timeout)
        if self.repo_pool is not None:
            self.repo_pool.close()  # no announcement takes one any more
        self.sweeper.stop()
        self.system.stop()
        self.coordination.close()  # after the actors: no sync holds a lease any more
        if self.fanout is not None:
            self.fanout.stop()  # after the actors: what they released last reaches the cluster
        self.heartbeat.stop()
        self.relay.close()
        logger.info("stopped: actors stopped, store closed (purgatory %s)", self.purgatory.counts())

    def log_debug_state(self) -> None:
        """SIGUSR1: every greenlet's stack (actors run on greenlets) and the sync queue."""
        from gevent.util import format_run_info

        logger.warning("greenlets and stacks:\n%s", "\n".join(format_run_info()))
        try:
            status = self.system.status(limit=20)
        except Exception as exc:  # a dump must never take the relay down
            logger.warning("sync status unavailable: %r", exc)
            return
        logger.warning("sync queue: %s", status.scheduler)
        for domain in status.domains:
            logger.warning("domain: %s", domain)


def open_grasp_relay(
    config: Config,
    *,
    clock: Clock | None = None,
    observer: SyncObserver | None = None,
) -> GraspRelay:
    """Build everything in start order (:mod:`.assembly` builds each part); raises
    StartupError with nothing left running."""
    data_dir = prepare_data_dir(config.data_dir)
    remove_interrupted_work(data_dir)  # nothing runs yet: what a SIGKILL left is garbage
    store = open_store(data_dir, config.database)
    # Start steps log at DEBUG: a failed start must print exactly one error line (the CLI's
    # contract). ``location`` never holds the password (S19.1).
    logger.debug("start 1/4: event store %s ready (%d events)", store.location, store.count())
    cleanup: list[Callable[[], object]] = [store.close]
    try:
        base = assembly.open_foundation(config, data_dir, store, cleanup)
        bound = base.config
        late = assembly.LateParts()
        metrics = SyncMetrics(base.purgatory.counts)
        board = assembly.status_board(base, late)
        pushes = PushesInFlight()
        workflow = assembly.release_workflow(base, late, metrics, board, pushes)
        ctx, system = assembly.start_actors(base, workflow, clock, observer or metrics, cleanup)
        late.system = system
        late.prs = prs = assembly.contributor_prs(base, system)
        repo_pool = EmptyRepoPool(data_dir / "repos")
        late.peers = peers = assembly.admission(base, system, ctx, prs, repo_pool.create)
        late.sync_sources = sync_sources = SyncSources(
            bound.sync_sources, SyncSourceSettings.from_config(bound), peers
        )
        app = build_app(
            bound,
            assembly.session_context(base, peers),
            mounts=assembly.http_mounts(base, system, pushes, metrics, board, prs),
        )
        base.server.application = app
        relay = Relay(config=bound, store=store, hub=base.hub, app=app, server=base.server)
        sweeper = PurgatorySweeper(
            base.purgatory,
            base.index,
            bound.maintenance_interval_secs,
            on_sweep=assembly.prs_upkeep(prs),
            sync=system,
        )
        return GraspRelay(
            relay,
            base.purgatory,
            base.index,
            system,
            sweeper,
            sync_sources,
            metrics,
            board,
            Heartbeat(store, base.node),
            base.restored,
            base.fanout,
            peers,
            base.coordination,
            repo_pool,
        )
    except BaseException:
        for close in reversed(cleanup):
            try:
                close()
            except Exception:
                logger.exception("cleanup after a failed start")
        raise
