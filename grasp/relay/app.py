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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from actors import system as actor_system
from actors.clock import Clock
from actors.config import SyncConfig
from actors.observer import SyncObserver
from actors.trace.recorder import JsonlTracer
from grasp.admission.write_policy import GraspWritePolicy
from grasp.cleanup import PlaceholderCleanup
from grasp.context import RealSyncContext
from grasp.git import FetchLimits, FetchPolicy, PushesInFlight, remove_interrupted_work
from grasp.purgatory import STATE_FILENAME, PurgatoryFileError, PurgatoryStore, SweepResult
from grasp.relay.config import Config
from grasp.relay.fetch_checks import warn_unfetchable_sources
from grasp.relay.git_service.placeholder_quota import PlaceholderLimits
from grasp.relay.git_service.prs import ContributorRepositories
from grasp.relay.git_service.service import SERVE_CONFIG, GitService
from grasp.relay.heartbeat import Heartbeat, node_id
from grasp.relay.maintenance import PurgatorySweeper
from grasp.relay.observe.metrics import SyncMetrics
from grasp.relay.observe.status import HISTORY_SHOWN, StatusBoard
from grasp.relay.peers.network import PeerNetwork, PeerSettings
from grasp.relay.sync_sources.settings import SyncSourceSettings
from grasp.relay.sync_sources.source import SyncSources
from grasp.relay.transport.http import (
    GIT_MOUNT,
    METRICS_MOUNT,
    PRS_MOUNT,
    STATUS_JSON_MOUNT,
    STATUS_MOUNT,
    MountKey,
    WSGIApp,
)
from grasp.relay.transport.hub import SubscriptionHub
from grasp.relay.transport.server import (
    Relay,
    StartupError,
    build_app,
    listen,
    negentropy_responders,
    open_store,
    prepare_data_dir,
    session_limits,
)
from grasp.relay.transport.session import SessionContext
from grasp.release import ReleaseWorkflow
from grasp.repositories import RepositoryIndex
from grasp.store.base import EventStore
from grasp.store.cluster import LocalCoordination, PostgresCoordination
from messages.history import SyncHistoryReport

if TYPE_CHECKING:
    from grasp.store.fanout import ClusterFanout

logger = logging.getLogger(__name__)

__all__ = ["GraspRelay", "StartupError", "open_grasp_relay", "sync_config"]


def sync_config(config: Config) -> SyncConfig:
    """The actor system's numbers from the relay's options (S12)."""
    return SyncConfig(
        tick_interval=config.sync_loop_interval_secs,
        max_concurrent=config.sync_domain_concurrent,
        max_per_minute=config.sync_domain_rate_limit,
        user_delay=config.sync_default_delay_secs,
        synced_delay=config.sync_immediate_delay_secs,
        rate_window=config.sync_rate_window_secs,
        precise_wakeups=config.sync_precise_wakeups,
        backoff_scale=config.sync_backoff_scale,
        history_attempts=config.sync_history_attempts,
        history_identifiers=config.sync_history_identifiers,
    )


def fetch_settings(config: Config) -> tuple[FetchPolicy, FetchLimits]:
    return (
        FetchPolicy(allow_private=config.allow_private_fetch),
        FetchLimits(
            config.fetch_timeout_secs,
            config.fetch_read_timeout_secs,
            config.fetch_max_bytes,
            config.fetch_max_advertisement_bytes,
            config.fetch_max_refs,
        ),
    )


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
    coordination: LocalCoordination | PostgresCoordination = field(
        default_factory=LocalCoordination
    )

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
    """Build everything in start order; raises StartupError with nothing left running."""
    data_dir = prepare_data_dir(config.data_dir)
    remove_interrupted_work(data_dir)  # nothing runs yet: what a SIGKILL left is garbage
    store = open_store(data_dir, config.database)
    # Start steps log at DEBUG: a failed start must print exactly one error line (the CLI's
    # contract). ``location`` never holds the password (S19.1).
    logger.debug("start 1/4: event store %s ready (%d events)", store.location, store.count())
    cleanup: list[Callable[[], object]] = [store.close]
    try:
        server = listen(config)
        cleanup.append(server.close)
        bound = config.with_bound_port(server.server_port)
        node = node_id(bound.port)
        purgatory, restored = _open_purgatory(store, node, bound, data_dir / STATE_FILENAME)
        logger.debug("start 2/4: purgatory ready (%s)", purgatory.counts())
        hub = SubscriptionHub()
        fanout = _cluster_fanout(bound, node, store, hub)
        notify = fanout.publish if fanout is not None else hub.publish
        coordination = _coordination(bound, store)
        index = RepositoryIndex(store, purgatory, data_dir)
        metrics = SyncMetrics(purgatory.counts)

        def sync_history(identifier: str | None) -> SyncHistoryReport:
            return system.history(identifier, limit=HISTORY_SHOWN, timeout=2.0)

        board = StatusBoard(  # the lambdas look up system and sync_sources when called
            sync_status=lambda: system.status(limit=10, timeout=2.0),
            purgatory_counts=purgatory.counts,
            sync_sources=lambda: sync_sources.status(),
            sync_history=sync_history,
            peers=lambda: peers.status(),
            node=coordination.node,
        )

        def on_release(event, identifier: str, held_for: float | None) -> None:
            metrics.event_released(event.kind)
            board.record_release(event.id, event.kind, identifier, held_for)
            peers.released(event)  # S17.2: what waited for it as a parent is retried

        prs: ContributorRepositories | None = None  # GRASP-06, built once the actors run

        pushes = PushesInFlight()
        workflow = ReleaseWorkflow(
            index,
            store,
            purgatory,
            notify=notify,
            on_release=on_release,
            pr_sources=lambda pr: prs.sources(pr) if prs is not None else [],
            cleanup=PlaceholderCleanup(index, purgatory, store, pushes),
        )
        policy, limits = fetch_settings(bound)
        ctx = RealSyncContext(
            index,
            purgatory,
            workflow,
            domain=bound.public_domain,
            policy=policy,
            limits=limits,
            coordination=coordination,
        )
        tracer = JsonlTracer(bound.trace) if bound.trace else None
        system = actor_system.start(
            ctx, sync_config(bound), clock, tracer=tracer, observer=observer or metrics
        )
        cleanup.append(system.stop)
        coordination.on_nodes_gone = lambda nodes: system.adopt_pending()  # S19.2 failover
        logger.debug("start 3/4: actors started (%s)", ", ".join(system.actor_names()))
        if bound.grasp06:
            prs = ContributorRepositories(
                data_dir,
                bound.public_domain,
                store,
                purgatory,
                system,
                serve_config=SERVE_CONFIG,
                max_placeholder_bytes=bound.placeholder_max_bytes,
                max_placeholders_per_repo=bound.placeholder_max_per_repo,
            )
        grasp_policy = GraspWritePolicy(
            domain=bound.public_domain,
            index=index,
            store=store,
            purgatory=purgatory,
            sync=system,
            notify=notify,
            curation=bound.curation,
            archive=bound.archive_policy,
            prs=prs,
            public_scheme=bound.public_scheme,
            fetch_candidates=ctx.fetch_candidates,
        )
        peers = _peer_network(bound, grasp_policy, store, policy)
        write_policy = peers  # S17.1, S17.2: every accepted event passes the peer network
        sync_sources = SyncSources(
            bound.sync_sources, SyncSourceSettings.from_config(bound), write_policy
        )
        context = SessionContext(
            accept_event=write_policy,
            query=store.query,
            hub=hub,
            limits=session_limits(bound),
            query_json=store.query_json,
            negentropy=negentropy_responders(bound, store),
        )
        quota = PlaceholderLimits(bound.placeholder_max_bytes, bound.placeholder_max_per_repo)
        git = GitService(
            index,
            store,
            purgatory,
            system,
            domain=bound.public_domain,
            limits=quota,
            pushes=pushes,
            archive=bound.archive_policy,
        )
        mounts: dict[MountKey, WSGIApp] = {
            GIT_MOUNT: git.app(),
            METRICS_MOUNT: metrics.wsgi_app(),
            STATUS_JSON_MOUNT: board.json_app(),
            STATUS_MOUNT: board.html_app(),
        }
        if prs is not None:
            mounts[PRS_MOUNT] = prs.app()
        app = build_app(bound, context, mounts=mounts)
        server.application = app
        relay = Relay(config=bound, store=store, hub=hub, app=app, server=server)
        return GraspRelay(
            relay,
            purgatory,
            index,
            system,
            PurgatorySweeper(
                purgatory,
                index,
                bound.maintenance_interval_secs,
                on_sweep=_prs_upkeep(prs),
                sync=system,
            ),
            sync_sources,
            metrics,
            board,
            Heartbeat(store, node),
            restored,
            fanout,
            peers,
            coordination,
        )
    except BaseException:
        for close in reversed(cleanup):
            try:
                close()
            except Exception:
                logger.exception("cleanup after a failed start")
        raise


def _cluster_fanout(
    config: Config, node: str, store: EventStore, hub: SubscriptionHub
) -> ClusterFanout | None:
    """On a shared PostgreSQL database (S19.2) stored and released events also reach the
    other nodes' subscribers; the driver is imported only then."""
    if not config.clustered or config.database is None:
        return None
    from grasp.store.fanout import ClusterFanout

    return ClusterFanout(config.database, node, store, hub.publish)


def _peer_network(
    config: Config, inner: GraspWritePolicy, store: EventStore, policy: FetchPolicy
) -> PeerNetwork:
    """S17.1: the peers of earlier runs, the bootstrap relays and those of stored announcements."""
    listening = [config.host]
    if config.host in ("0.0.0.0", "::", ""):
        listening = ["127.0.0.1", "localhost", "[::1]"]
    own = (config.public_domain, *(f"{host}:{config.port}" for host in listening))
    settings = PeerSettings(
        domains=own,
        bootstrap=config.bootstrap_relays,
        discover=config.discover_relays,
        reconcile_interval=config.peer_reconcile_interval_secs,
        excluded=config.sync_sources,
    )
    network = PeerNetwork(inner, store, settings, policy, SyncSourceSettings.from_config(config))
    network.load()
    return network


def _coordination(config: Config, store: EventStore) -> LocalCoordination | PostgresCoordination:
    """S19.2: on a shared PostgreSQL database an identifier syncs on one node at a time and the
    throttle limits hold summed over nodes; a single process grants everything itself."""
    if config.clustered:
        from grasp.store.postgres import PostgresEventStore

        if isinstance(store, PostgresEventStore):
            return PostgresCoordination(store)
    return LocalCoordination()


def _prs_upkeep(prs: ContributorRepositories | None) -> Callable[[SweepResult], object] | None:
    """After each sweep: drop the /prs/ refs of expired placeholders (S16.1)."""
    if prs is None:
        return None
    return lambda result: prs.forget(result.placeholders)


def _open_purgatory(
    store: EventStore, node: str, config: Config, state_file: Path
) -> tuple[PurgatoryStore, list[str]]:
    """S9.1: credit the downtime to every held deadline, rebuild purgatory from the event
    database, import an old state file once; returns it and the identifiers to queue again."""
    downtime = store.resume(node, time.time())
    if downtime:
        logger.info("the relay was down %.1f s; held deadlines moved by that much", downtime)
    purgatory = PurgatoryStore(
        expiry_secs=config.purgatory_expiry_secs, db=store, shared=config.clustered
    )
    restored = purgatory.load()
    imported = _import(purgatory, state_file)
    if restored or imported:
        logger.info("restored purgatory: %s", purgatory.counts())
    return purgatory, sorted({*restored, *imported})


def _import(purgatory: PurgatoryStore, path: Path) -> list[str]:
    """An older relay's ``purgatory-state.json``: into the tables, then deleted (S9.1 upgrade);
    a bad file is logged and left, never fatal."""
    try:
        return purgatory.restore(path)
    except PurgatoryFileError as exc:
        logger.warning("could not import purgatory from %s (%s); left in place", path, exc)
        return []
