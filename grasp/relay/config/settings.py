"""The relay's settings: one frozen :class:`Config`, in seconds and bytes.

Field defaults are the S12 defaults, taken from the layer each setting configures (the actor
system's ``SyncConfig``, the fetch limits, the websocket and session limits, purgatory), so every
SPEC number has one home and the relay cannot disagree with its parts.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from actors.config import SyncConfig
from grasp.admission.archive import Archive
from grasp.admission.curation import Curation
from grasp.git import FetchLimits
from grasp.nostr.nip77 import DEFAULT_FRAME_SIZE_LIMIT, DEFAULT_MAX_RECORDS, DEFAULT_MAX_SESSIONS
from grasp.purgatory.store import DEFAULT_EXPIRY_SECS
from grasp.relay.git_service.placeholder_quota import PlaceholderLimits
from grasp.relay.maintenance import SWEEP_INTERVAL_SECS
from grasp.relay.transport.connection import WebSocketLimits
from grasp.relay.transport.session import SessionLimits

__all__ = ["CPU_CORES", "Config", "ConfigError"]

#: The cores the per-core defaults scale by (the sync caps, issue 16).
CPU_CORES = os.cpu_count() or 1

_SYNC, _FETCH = SyncConfig(), FetchLimits()
_WEBSOCKET, _SESSION = WebSocketLimits(), SessionLimits()
_PLACEHOLDERS = PlaceholderLimits()


class ConfigError(ValueError):
    """An unusable option value; ``str(exc)`` is one line fit for ``grasp-relay: error: ...``."""


@dataclass(frozen=True)
class Config:
    """Every setting of the relay process, in seconds and bytes whatever unit its flag takes
    (milliseconds are converted once, when parsed). Defaults are the S12 defaults, taken from
    the layer each setting configures so that every SPEC number has one home."""

    # purgatory sync (the seed's five, S4)
    sync_loop_interval_secs: float = _SYNC.tick_interval
    sync_domain_concurrent: int = _SYNC.max_concurrent
    sync_domain_rate_limit: int = _SYNC.max_per_minute
    sync_default_delay_secs: float = _SYNC.user_delay
    sync_immediate_delay_secs: float = _SYNC.synced_delay
    # listening and identity
    host: str = "127.0.0.1"
    port: int = 7777
    #: Public authority (``host[:port]``) used in clone/relay URLs; None means ``<host>:<port>``.
    domain: str | None = None
    data_dir: Path = Path("grasp-data")
    # sync sources and fetching (S3.4, S7.2, S10.7)
    sync_sources: tuple[str, ...] = ()
    allow_private_fetch: bool = False
    fetch_timeout_secs: float = _FETCH.deadline_secs
    fetch_read_timeout_secs: float = _FETCH.read_timeout_secs
    fetch_max_bytes: int = _FETCH.max_bytes
    fetch_max_advertisement_bytes: int = _FETCH.max_advertisement_bytes  # S14.1
    fetch_max_refs: int = _FETCH.max_refs
    purgatory_expiry_secs: float = DEFAULT_EXPIRY_SECS
    trace: Path | None = None
    # benchmark knobs: shorter rate window (politeness runs), tick-only scheduling (baseline)
    sync_rate_window_secs: float = _SYNC.rate_window
    sync_precise_wakeups: bool = _SYNC.precise_wakeups
    sync_backoff_scale: float = _SYNC.backoff_scale
    # NIP-01 limits (S10.1, bold there, so configurable)
    max_message_bytes: int = _WEBSOCKET.max_message_bytes
    max_subscriptions: int = _SESSION.max_subscriptions
    max_limit: int = _SESSION.max_limit
    log_level: str = "INFO"
    # NIP-11 identity (S15.2); None: the built-in text naming the domain
    relay_name: str = "grasp-relay"
    relay_description: str | None = None
    relay_contact: str | None = None
    relay_icon: str | None = None
    repo_acceptance_criteria: str | None = None
    # curation (S15.5): repository rules (npub, npub/identifier, identifier) and denied keys
    repo_allow: tuple[str, ...] = ()
    repo_deny: tuple[str, ...] = ()
    deny_pubkeys: tuple[str, ...] = ()
    #: EVENT messages per minute per websocket connection; 0 = unlimited (not curation).
    event_rate_limit: int = _SESSION.max_events_per_minute
    #: GRASP-06 contributor PRs at /prs/<npub>/<identifier>.git (S16.1)
    grasp06: bool = True
    # sync history (S18.1) and how clients reach us (S10.4 answers)
    sync_history_attempts: int = _SYNC.history_attempts
    sync_history_identifiers: int = _SYNC.history_identifiers
    #: ``http`` or ``https``; None means https when ``--domain`` is given, else http.
    public_url_scheme: str | None = None
    # purgatory upkeep and placeholder bounds (S1.4, S14.3)
    maintenance_interval_secs: float = SWEEP_INTERVAL_SECS
    placeholder_max_bytes: int = _PLACEHOLDERS.max_bytes
    placeholder_max_per_repo: int = _PLACEHOLDERS.max_per_repo
    # NIP-77 served on the websocket (S17.3); 0 sessions turns it off
    negentropy_max_sessions: int = DEFAULT_MAX_SESSIONS
    negentropy_max_records: int = DEFAULT_MAX_RECORDS
    negentropy_frame_size_limit: int = DEFAULT_FRAME_SIZE_LIMIT
    # GRASP-05 archive (S17.5): repository rules, or everything
    archive: tuple[str, ...] = ()
    archive_all: bool = False
    # peers (S17.1, S17.2): bootstrap relays, discovery from announcements, reconciliation
    bootstrap_relays: tuple[str, ...] = ()
    discover_relays: bool = True
    peer_reconcile_interval_secs: float = 86400.0
    #: Syncs running at once on the main path, machine-wide (issue 16): what the machine
    #: sustains, 8 per core, not the actors' memory bound of 256.
    sync_max_running: int = 8 * CPU_CORES
    #: the cap follows the Scheduler's lateness between 2 per core and --sync-max-running,
    #: starting at 8 per core (actors.concurrency); off: --sync-max-running fixed
    sync_adaptive_running: bool = False
    #: S19.1: ``postgresql://…`` (a cluster) or a SQLite file; None: ``<data-dir>/events.sqlite3``.
    database: str | None = None

    @property
    def clustered(self) -> bool:
        """Whether the events live in PostgreSQL, shared with other nodes (S19.2)."""
        return self.database is not None and "://" in self.database

    @property
    def public_domain(self) -> str:
        """The authority other parties use to reach us: ``--domain`` or ``<host>:<port>``."""
        if self.domain is not None:
            return self.domain
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def curation(self) -> Curation:
        """The curation rules (S15.5); the options were validated when parsed."""
        return Curation.from_texts(self.repo_allow, self.repo_deny, self.deny_pubkeys)

    @property
    def public_scheme(self) -> str:
        """``http`` or ``https``: the scheme this relay is reached by (``ws``/``wss`` follow).

        Without ``--public-url-scheme`` it is https behind a public ``--domain`` (a TLS proxy
        in front, docs/deployment) and http otherwise: what the relay itself serves.
        """
        if self.public_url_scheme is not None:
            return self.public_url_scheme
        return "https" if self.domain is not None else "http"

    @property
    def sync_enabled(self) -> bool:
        """Whether this relay syncs events from other relays (GRASP-02, S17.1): by discovery
        from announcements, bootstrap relays or sync sources."""
        return bool(self.discover_relays or self.bootstrap_relays or self.sync_sources)

    @property
    def archive_policy(self) -> Archive:
        """The GRASP-05 archive rules (S17.5); the options were validated when parsed."""
        return Archive.from_texts(self.archive, everything=self.archive_all)

    def with_bound_port(self, port: int) -> Config:
        """The config as seen after binding: ``--port 0`` replaced by the real port.

        The default domain follows the real port, so clone URLs checked by the write policy
        name an address that actually answers.
        """
        return dataclasses.replace(self, port=port)
