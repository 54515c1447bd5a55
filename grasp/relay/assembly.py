"""The relay's parts, built stage by stage for :func:`grasp.relay.app.open_grasp_relay`.

Each function builds one concern (ARCHITECTURE §6) from what earlier stages made: the
:class:`Foundation` (store, socket, purgatory, cluster coordination), the observation (metrics,
status board), the release workflow, the actor system, admission (write policy, peers) and the
served HTTP apps. Some parts call parts that are made after them — the status board asks the
actor system, a release tells the peers, the release workflow asks GRASP-06 for PR clone URLs —
so those calls go through :class:`LateParts`, filled in as the stages run; nothing calls them
before the relay serves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
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
from grasp.git import FetchLimits, FetchPolicy, PushesInFlight, create_bare_repo
from grasp.nostr.event import Event
from grasp.nostr.nip34 import PullRequest
from grasp.purgatory import STATE_FILENAME, PurgatoryFileError, PurgatoryStore, SweepResult
from grasp.relay.config import Config
from grasp.relay.config.settings import CPU_CORES
from grasp.relay.git_service.placeholder_quota import PlaceholderLimits
from grasp.relay.git_service.prs import ContributorRepositories
from grasp.relay.git_service.service import SERVE_CONFIG, GitService
from grasp.relay.heartbeat import node_id
from grasp.relay.observe.metrics import SyncMetrics
from grasp.relay.observe.status import HISTORY_SHOWN, StatusBoard
from grasp.relay.peers.network import PeerNetwork, PeerSettings
from grasp.relay.peers.peer import PeerStatus
from grasp.relay.sync_sources.settings import SyncSourceSettings
from grasp.relay.sync_sources.source import SyncSources, SyncSourceStatus
from grasp.relay.transport.http import (
    GIT_MOUNT,
    METRICS_MOUNT,
    PRS_MOUNT,
    STATUS_JSON_MOUNT,
    STATUS_MOUNT,
    MountKey,
    WSGIApp,
)
from grasp.relay.transport.hub import SubscriptionHub, publish_now
from grasp.relay.transport.server import listen, negentropy_responders, session_limits
from grasp.relay.transport.session import SessionContext
from grasp.release import ReleaseWorkflow
from grasp.repositories import RepositoryIndex
from grasp.store.base import EventStore
from grasp.store.cluster import LocalCoordination, PostgresCoordination
from messages.history import SyncHistoryReport

if TYPE_CHECKING:
    from gevent.pywsgi import WSGIServer

    from grasp.store.fanout import ClusterFanout

logger = logging.getLogger(__name__)

Coordination = LocalCoordination | PostgresCoordination


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
        max_running_syncs=config.sync_max_running,
        adaptive_running=config.sync_adaptive_running,
        min_running_syncs=min(2 * CPU_CORES, config.sync_max_running),
        start_running_syncs=8 * CPU_CORES,
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


@dataclass(frozen=True)
class Foundation:
    """Start steps 1–2: the bound socket and its config, purgatory restored from the store,
    the subscription hub and, on a cluster, fan-out and coordination."""

    config: Config  # bound: the port is known
    data_dir: Path
    store: EventStore
    server: WSGIServer
    node: str
    purgatory: PurgatoryStore
    restored: list[str]
    hub: SubscriptionHub
    fanout: ClusterFanout | None
    coordination: Coordination
    index: RepositoryIndex

    def notify(self, event: Event) -> int:
        """Deliver a stored or released event: to every node on a cluster (S19.2)."""
        if self.fanout is not None:
            return self.fanout.publish(event)
        return self.hub.publish(event)

    def notify_released(self, event: Event) -> int:
        """:meth:`notify` for the Releaser: the subscribers' writers send before it goes on
        (:func:`publish_now`; it is an actor, its inbox waits meanwhile)."""
        return publish_now(self.notify, event)


class LateParts:
    """The parts other parts call but that are built after them (see the module docstring)."""

    def __init__(self) -> None:
        self.system: actor_system.SyncSystem | None = None
        self.sync_sources: SyncSources | None = None
        self.peers: PeerNetwork | None = None
        self.prs: ContributorRepositories | None = None  # GRASP-06, when on

    def _system(self) -> actor_system.SyncSystem:
        assert self.system is not None, "asked before the actors started"
        return self.system

    def sync_status(self) -> actor_system.SyncStatus:
        return self._system().status(limit=10, timeout=2.0)

    def sync_history(self, identifier: str | None) -> SyncHistoryReport:
        return self._system().history(identifier, limit=HISTORY_SHOWN, timeout=2.0)

    def sync_sources_status(self) -> list[SyncSourceStatus]:
        return self.sync_sources.status() if self.sync_sources is not None else []

    def peers_status(self) -> list[PeerStatus]:
        return self.peers.status() if self.peers is not None else []

    def pr_sources(self, pr: PullRequest) -> list[Path]:
        return self.prs.sources(pr) if self.prs is not None else []


def open_foundation(
    config: Config, data_dir: Path, store: EventStore, cleanup: list[Callable[[], object]]
) -> Foundation:
    """Listen, then restore purgatory (S9.1) and set up the cluster's parts (S19.2)."""
    server = listen(config)
    cleanup.append(server.close)
    bound = config.with_bound_port(server.server_port)
    node = node_id(bound.port)
    purgatory, restored = _open_purgatory(store, node, bound, data_dir / STATE_FILENAME)
    logger.debug("start 2/4: purgatory ready (%s)", purgatory.counts())
    hub = SubscriptionHub()
    return Foundation(
        config=bound,
        data_dir=data_dir,
        store=store,
        server=server,
        node=node,
        purgatory=purgatory,
        restored=restored,
        hub=hub,
        fanout=_cluster_fanout(bound, node, store, hub),
        coordination=_coordination(bound, store),
        index=RepositoryIndex(store, purgatory, data_dir),
    )


def status_board(base: Foundation, late: LateParts) -> StatusBoard:
    return StatusBoard(
        sync_status=late.sync_status,
        purgatory_counts=base.purgatory.counts,
        sync_sources=late.sync_sources_status,
        sync_history=late.sync_history,
        peers=late.peers_status,
        node=base.coordination.node,
    )


def release_workflow(
    base: Foundation,
    late: LateParts,
    metrics: SyncMetrics,
    board: StatusBoard,
    pushes: PushesInFlight,
) -> ReleaseWorkflow:
    """S8: the single writer of refs and released events, and what hears of each release."""

    def on_release(event: Event, identifier: str, held_for: float | None) -> None:
        metrics.event_released(event.kind)
        board.record_release(event.id, event.kind, identifier, held_for)
        if late.peers is not None:
            late.peers.released(event)  # S17.2: what waited for it as a parent is retried

    return ReleaseWorkflow(
        base.index,
        base.store,
        base.purgatory,
        notify=base.notify_released,
        on_release=on_release,
        pr_sources=late.pr_sources,
        cleanup=PlaceholderCleanup(base.index, base.purgatory, base.store, pushes),
    )


def start_actors(
    base: Foundation,
    workflow: ReleaseWorkflow,
    clock: Clock | None,
    observer: SyncObserver,
    cleanup: list[Callable[[], object]],
) -> tuple[RealSyncContext, actor_system.SyncSystem]:
    """Start step 3: the real port and the actor system over it."""
    policy, limits = fetch_settings(base.config)
    ctx = RealSyncContext(
        base.index,
        base.purgatory,
        workflow,
        domain=base.config.public_domain,
        policy=policy,
        limits=limits,
        coordination=base.coordination,
    )
    tracer = JsonlTracer(base.config.trace) if base.config.trace else None
    system = actor_system.start(
        ctx, sync_config(base.config), clock, tracer=tracer, observer=observer
    )
    cleanup.append(system.stop)
    base.coordination.on_nodes_gone = lambda nodes: system.adopt_pending()  # S19.2 failover
    logger.debug("start 3/4: actors started (%s)", ", ".join(system.actor_names()))
    return ctx, system


def contributor_prs(
    base: Foundation, system: actor_system.SyncSystem
) -> ContributorRepositories | None:
    """GRASP-06 (S16), when on."""
    if not base.config.grasp06:
        return None
    return ContributorRepositories(
        base.data_dir,
        base.config.public_domain,
        base.store,
        base.purgatory,
        system,
        serve_config=SERVE_CONFIG,
        max_placeholder_bytes=base.config.placeholder_max_bytes,
        max_placeholders_per_repo=base.config.placeholder_max_per_repo,
    )


def admission(
    base: Foundation,
    system: actor_system.SyncSystem,
    ctx: RealSyncContext,
    prs: ContributorRepositories | None,
    create_repo: Callable[[Path], Path] = create_bare_repo,
) -> PeerNetwork:
    """The write policy every event passes (S10.4), wrapped by the peer network (S17.1, S17.2);
    ``create_repo`` makes a held announcement's empty repository (P7: from a pool)."""
    config = base.config
    grasp_policy = GraspWritePolicy(
        domain=config.public_domain,
        index=base.index,
        store=base.store,
        purgatory=base.purgatory,
        sync=system,
        notify=base.notify,
        curation=config.curation,
        archive=config.archive_policy,
        prs=prs,
        public_scheme=config.public_scheme,
        fetch_candidates=ctx.fetch_candidates,
        create_repo=create_repo,
    )
    return _peer_network(config, grasp_policy, base.store, fetch_settings(config)[0])


def session_context(base: Foundation, write_policy: PeerNetwork) -> SessionContext:
    """What every websocket session gets: the write policy, the store's queries, NIP-77."""
    return SessionContext(
        accept_event=write_policy,
        query=base.store.query,
        hub=base.hub,
        limits=session_limits(base.config),
        query_json=base.store.query_json,
        negentropy=negentropy_responders(base.config, base.store),
    )


def http_mounts(
    base: Foundation,
    system: actor_system.SyncSystem,
    pushes: PushesInFlight,
    metrics: SyncMetrics,
    board: StatusBoard,
    prs: ContributorRepositories | None,
) -> dict[MountKey, WSGIApp]:
    """The HTTP apps beside NIP-01: git (S10.5), metrics, the status pages, GRASP-06's /prs/."""
    config = base.config
    git = GitService(
        base.index,
        base.store,
        base.purgatory,
        system,
        domain=config.public_domain,
        limits=PlaceholderLimits(config.placeholder_max_bytes, config.placeholder_max_per_repo),
        pushes=pushes,
        archive=config.archive_policy,
    )
    mounts: dict[MountKey, WSGIApp] = {
        GIT_MOUNT: git.app(),
        METRICS_MOUNT: metrics.wsgi_app(),
        STATUS_JSON_MOUNT: board.json_app(),
        STATUS_MOUNT: board.html_app(),
    }
    if prs is not None:
        mounts[PRS_MOUNT] = prs.app()
    return mounts


def prs_upkeep(prs: ContributorRepositories | None) -> Callable[[SweepResult], object] | None:
    """After each sweep: drop the /prs/ refs of expired placeholders (S16.1)."""
    if prs is None:
        return None
    return lambda result: prs.forget(result.placeholders)


def _cluster_fanout(
    config: Config, node: str, store: EventStore, hub: SubscriptionHub
) -> ClusterFanout | None:
    """On a shared PostgreSQL database (S19.2) stored and released events also reach the
    other nodes' subscribers; the driver is imported only then."""
    if not config.clustered or config.database is None:
        return None
    from grasp.store.fanout import ClusterFanout

    return ClusterFanout(config.database, node, store, hub.publish)


def _coordination(config: Config, store: EventStore) -> Coordination:
    """S19.2: on a shared PostgreSQL database an identifier syncs on one node at a time and the
    throttle limits hold summed over nodes; a single process grants everything itself."""
    if config.clustered:
        from grasp.store.postgres import PostgresEventStore

        if isinstance(store, PostgresEventStore):
            return PostgresCoordination(store)
    return LocalCoordination()


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
