"""The option table: every setting's field, flag, env var, parser and help, declared once.

The argparse parser, the env lookup, ``--help`` and ``docs/configuration.rst`` (checked by a
test) are generated from :data:`OPTIONS`, so an option cannot exist as a flag but not as an env
var, or be documented with the wrong default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .values import (
    LOG_LEVELS,
    as_milliseconds,
    authority,
    boolean,
    byte_size,
    database,
    frame_size_limit,
    host,
    int_at_least,
    log_level,
    milliseconds,
    path,
    port,
    positive_milliseconds,
    positive_seconds,
    pubkey,
    pubkeys,
    relay_url,
    relay_urls,
    repo_rule,
    repo_rules,
    seconds,
    text,
    url_scheme,
)

__all__ = ["OPTIONS", "Option"]


@dataclass(frozen=True)
class Option:
    """One configurable setting: a Config field, its CLI flag and env var, and how to parse them."""

    field: str
    flag: str
    env: str
    parse: Callable[[str], Any]
    help: str
    #: "value" (``--x V``), "switch" (``--x`` / ``--no-x``) or "append" (repeatable ``--x V``).
    kind: str = "value"
    metavar: str | None = None
    #: How the default is shown in --help when ``repr``-ish formatting would mislead.
    default_text: str | None = None
    #: Parses the env var when it differs from the flag (comma lists for "append").
    env_parse: Callable[[str], Any] | None = None
    #: Shows the Config value in the flag's unit (milliseconds flags hold seconds).
    show: Callable[[Any], str] | None = None


# fmt: off
OPTIONS: tuple[Option, ...] = (
    Option("sync_loop_interval_secs", "--sync-loop-interval-ms", "GRASP_SYNC_LOOP_INTERVAL_MS",
           positive_milliseconds, "period of the scheduler's safety-net Tick (S4.4)",
           metavar="MS", show=as_milliseconds),
    Option("sync_domain_concurrent", "--sync-domain-concurrent", "GRASP_SYNC_DOMAIN_CONCURRENT",
           int_at_least(1), "max fetches in flight per remote domain (S6.1)", metavar="N"),
    Option("sync_domain_rate_limit", "--sync-domain-rate-limit", "GRASP_SYNC_DOMAIN_RATE_LIMIT",
           int_at_least(1), "max fetches started per remote domain in any 60 s window (S6.1)",
           metavar="N"),
    Option("sync_default_delay_secs", "--sync-default-delay-secs", "GRASP_SYNC_DEFAULT_DELAY_SECS",
           seconds, "sync delay after a user-submitted event; a push usually follows (S4.2)",
           metavar="SECS"),
    Option("sync_immediate_delay_secs", "--sync-immediate-delay-ms",
           "GRASP_SYNC_IMMEDIATE_DELAY_MS", milliseconds,
           "sync delay after an event from a sync source or a restart (S4.2)", metavar="MS",
           show=as_milliseconds),
    Option("host", "--host", "GRASP_HOST", host, "address to listen on", metavar="HOST"),
    Option("port", "--port", "GRASP_PORT", port, "port to listen on; 0 picks a free port",
           metavar="PORT"),
    Option("domain", "--domain", "GRASP_DOMAIN", authority,
           "public authority (host[:port]) of this relay in clone and relay URLs (S3.2, S10.4)",
           metavar="AUTHORITY", default_text="<host>:<port>"),
    Option("data_dir", "--data-dir", "GRASP_DATA_DIR", path,
           "directory for events.sqlite3, git repositories and purgatory state", metavar="DIR",
           default_text="./grasp-data"),
    Option("sync_sources", "--sync-source", "GRASP_SYNC_SOURCES", relay_url,
           "relay to copy NIP-34 events from (repeatable; env: comma-separated list) (S10.7)",
           kind="append", metavar="WS_URL", default_text="none", env_parse=relay_urls),
    Option("allow_private_fetch", "--allow-private-fetch", "GRASP_ALLOW_PRIVATE_FETCH", boolean,
           "allow fetching git data from loopback/private addresses (S3.4; tests need it)",
           kind="switch", default_text="off"),
    Option("fetch_timeout_secs", "--fetch-timeout-secs", "GRASP_FETCH_TIMEOUT_SECS",
           positive_seconds, "total deadline of one git fetch (S7.2)", metavar="SECS"),
    Option("fetch_read_timeout_secs", "--fetch-read-timeout-secs", "GRASP_FETCH_READ_TIMEOUT_SECS",
           positive_seconds, "per-read timeout of a git fetch (S7.2)", metavar="SECS"),
    Option("fetch_max_bytes", "--fetch-max-bytes", "GRASP_FETCH_MAX_BYTES", byte_size,
           "pack size cap of one git fetch, e.g. 1073741824 or 1GiB (S7.2)", metavar="BYTES",
           default_text="1GiB"),
    Option("purgatory_expiry_secs", "--purgatory-expiry-secs", "GRASP_PURGATORY_EXPIRY_SECS",
           positive_seconds, "how long a held event waits for its git data (S1.4)", metavar="SECS"),
    Option("trace", "--trace", "GRASP_TRACE", path,
           "write one JSON line per delivered actor message to FILE (S13.3)", metavar="FILE",
           default_text="off"),
    Option("sync_rate_window_secs", "--sync-rate-window-secs", "GRASP_SYNC_RATE_WINDOW_SECS",
           positive_seconds, "length of the per-domain rate window (S6.1); shorten only for "
           "benchmarks", metavar="SECS"),
    Option("sync_precise_wakeups", "--sync-precise-wakeups", "GRASP_SYNC_PRECISE_WAKEUPS", boolean,
           "wake the scheduler at each entry's next attempt (S4.4); --no-sync-precise-wakeups "
           "leaves only the periodic tick (a benchmark baseline)", kind="switch",
           default_text="on"),
    Option("sync_backoff_scale", "--sync-backoff-scale", "GRASP_SYNC_BACKOFF_SCALE",
           positive_seconds,
           "multiplies the 20/40/80/120 s retry backoff (S4.1); below 1 only for tests",
           metavar="FACTOR"),
    Option("max_message_bytes", "--max-message-bytes", "GRASP_MAX_MESSAGE_BYTES", byte_size,
           "largest websocket message accepted; bigger ones are closed with 1009 (S10.1)",
           metavar="BYTES", default_text="512KiB"),
    Option("max_subscriptions", "--max-subscriptions", "GRASP_MAX_SUBSCRIPTIONS", int_at_least(1),
           "open REQ subscriptions allowed per connection (S10.1)", metavar="N"),
    Option("max_limit", "--max-limit", "GRASP_MAX_LIMIT", int_at_least(1),
           "cap on a filter's 'limit' and on stored events per filter (S10.1)", metavar="N"),
    Option("log_level", "--log-level", "GRASP_LOG_LEVEL", log_level,
           f"logging threshold ({', '.join(LOG_LEVELS)})", metavar="LEVEL"),
    # -- issue 13: NIP-11 identity, curation, GRASP-06 (S15, S16) --
    Option("relay_name", "--relay-name", "GRASP_RELAY_NAME", text,
           "NIP-11 name of this relay (S15.2)", metavar="TEXT"),
    Option("relay_description", "--relay-description", "GRASP_RELAY_DESCRIPTION", text,
           "NIP-11 description (S15.2)", metavar="TEXT",
           default_text="a sentence naming the domain"),
    Option("relay_contact", "--relay-contact", "GRASP_RELAY_CONTACT", text,
           "NIP-11 contact URI of the operator, e.g. mailto:ops@example.org (S15.2)",
           metavar="URI", default_text="none"),
    Option("relay_icon", "--relay-icon", "GRASP_RELAY_ICON", text,
           "NIP-11 icon URL (S15.2)", metavar="URL", default_text="none"),
    Option("repo_acceptance_criteria", "--repo-acceptance-criteria",
           "GRASP_REPO_ACCEPTANCE_CRITERIA", text,
           "NIP-11 repo_acceptance_criteria, what this relay hosts (GRASP-01 L29, S15.2)",
           metavar="TEXT", default_text="the GRASP-01 rules, naming the domain"),
    Option("repo_allow", "--repo-allow", "GRASP_REPO_ALLOW", repo_rule,
           "accept only announcements of these repositories: npub, npub/identifier or "
           "identifier (repeatable; env: comma-separated) (S15.5)", kind="append",
           metavar="RULE", default_text="none", env_parse=repo_rules),
    Option("repo_deny", "--repo-deny", "GRASP_REPO_DENY", repo_rule,
           "refuse announcements of these repositories; beats --repo-allow (repeatable) "
           "(S15.5)", kind="append", metavar="RULE", default_text="none", env_parse=repo_rules),
    Option("deny_pubkeys", "--deny-pubkey", "GRASP_DENY_PUBKEYS", pubkey,
           "refuse every event of this key, npub or hex (repeatable) (S15.5)", kind="append",
           metavar="KEY", default_text="none", env_parse=pubkeys),
    Option("event_rate_limit", "--event-rate-limit", "GRASP_EVENT_RATE_LIMIT", int_at_least(0),
           "EVENT messages per minute per websocket connection, answered rate-limited: past "
           "it; 0 turns it off; sync sources are not limited (S15.5)", metavar="N"),
    Option("grasp06", "--grasp06", "GRASP_GRASP06", boolean,
           "GRASP-06 contributor PRs at /prs/<npub>/<identifier>.git; --no-grasp06 answers "
           "404 there (S16.1)", kind="switch", default_text="on"),
    Option("fetch_max_advertisement_bytes", "--fetch-max-advertisement-bytes",
           "GRASP_FETCH_MAX_ADVERTISEMENT_BYTES", byte_size,
           "cap on one ref advertisement of a git fetch (info/refs and ls-refs) (S14.1)",
           metavar="BYTES", default_text="32MiB"),
    Option("fetch_max_refs", "--fetch-max-refs", "GRASP_FETCH_MAX_REFS", int_at_least(1),
           "cap on the refs one advertisement of a git fetch may list (S14.1)", metavar="N"),
    Option("sync_history_attempts", "--sync-history-attempts", "GRASP_SYNC_HISTORY_ATTEMPTS",
           int_at_least(1), "sync attempts kept per identifier for /status (S18.1)", metavar="N"),
    Option("sync_history_identifiers", "--sync-history-identifiers",
           "GRASP_SYNC_HISTORY_IDENTIFIERS", int_at_least(1),
           "identifiers whose sync history is kept; the least recently attempted goes first "
           "(S18.1)", metavar="N"),
    Option("public_url_scheme", "--public-url-scheme", "GRASP_PUBLIC_URL_SCHEME", url_scheme,
           "scheme clients use to reach this relay (http: ws://, https: wss://), as answers "
           "name its clone and relay URLs (S10.4)", metavar="SCHEME",
           default_text="http; https with --domain"),
    Option("maintenance_interval_secs", "--maintenance-interval-secs",
           "GRASP_MAINTENANCE_INTERVAL_SECS", positive_seconds,
           "period of the purgatory sweep: expiry, placeholder cleanup (S1.4, S14.3)",
           metavar="SECS"),
    Option("placeholder_max_bytes", "--placeholder-max-bytes", "GRASP_PLACEHOLDER_MAX_BYTES",
           byte_size, "new objects one push to refs/nostr/<id> of an unknown event may bring, "
           "e.g. 32MiB (S14.3)", metavar="BYTES", default_text="32MiB"),
    Option("placeholder_max_per_repo", "--placeholder-max-per-repo",
           "GRASP_PLACEHOLDER_MAX_PER_REPO", int_at_least(0),
           "open placeholders (refs/nostr/<id> pushed before the PR event) per repository "
           "(S14.3)", metavar="N"),
    # -- issue 17: cluster mode (S19) --
    Option("database", "--database", "GRASP_DATABASE", database,
           "event database: postgresql://user:password@host:port/dbname (nodes sharing it, "
           "--data-dir and --domain form a cluster) or a SQLite file (S19.1)", metavar="URL",
           default_text="<data-dir>/events.sqlite3"),
    # -- issue 15 parts 3 and 5: NIP-77 served (S17.3), GRASP-05 archive (S17.5) --
    Option("negentropy_max_sessions", "--negentropy-max-sessions",
           "GRASP_NEGENTROPY_MAX_SESSIONS", int_at_least(0),
           "open NIP-77 reconciliations per connection, more are NEG-ERR blocked:; 0 turns "
           "NIP-77 off (S17.3)", metavar="N"),
    Option("negentropy_max_records", "--negentropy-max-records",
           "GRASP_NEGENTROPY_MAX_RECORDS", int_at_least(1),
           "stored events one NEG-OPEN filter may match; past it NEG-ERR blocked: (S17.3)",
           metavar="N"),
    Option("negentropy_frame_size_limit", "--negentropy-frame-size-limit",
           "GRASP_NEGENTROPY_FRAME_SIZE_LIMIT", frame_size_limit,
           "bytes of negentropy message per NEG-MSG reply (hex doubles it); 0 = none, else at "
           "least 4096 (S17.3)", metavar="BYTES"),
    Option("archive", "--archive", "GRASP_ARCHIVE", repo_rule,
           "archive these repositories read-only (GRASP-05): npub, npub/identifier or "
           "identifier, accepted without listing this relay (repeatable; env: comma-separated) "
           "(S17.5)", kind="append", metavar="RULE", default_text="none", env_parse=repo_rules),
    Option("archive_all", "--archive-all", "GRASP_ARCHIVE_ALL", boolean,
           "archive every announced repository read-only (GRASP-05) (S17.5)", kind="switch",
           default_text="off"),
    # -- issue 15: peers (GRASP-02 proactive sync, S17.1, S17.2, S17.4) --
    Option("bootstrap_relays", "--bootstrap-relay", "GRASP_BOOTSTRAP_RELAYS", relay_url,
           "peer relay to sync NIP-34 events with even before any announcement names it "
           "(repeatable; env: comma-separated list) (S17.1)", kind="append", metavar="WS_URL",
           default_text="none", env_parse=relay_urls),
    Option("discover_relays", "--discover-relays", "GRASP_DISCOVER_RELAYS", boolean,
           "make every relay in the relays tag of an accepted announcement a peer; "
           "--no-discover-relays keeps only --bootstrap-relay and --sync-source (S17.1)",
           kind="switch", default_text="on"),
    Option("peer_reconcile_interval_secs", "--peer-reconcile-interval",
           "GRASP_PEER_RECONCILE_INTERVAL", positive_seconds,
           "period of a full history reconciliation with each connected peer (S17.2)",
           metavar="SECS", default_text="86400"),
    # -- issue 16: what the machine sustains (P6) --
    Option("sync_max_running", "--sync-max-running", "GRASP_SYNC_MAX_RUNNING",
           int_at_least(1), "syncs (fetch and release) running at once, all domains together",
           metavar="N", default_text="8 per CPU core"),
    Option("sync_adaptive_running", "--sync-adaptive-running", "GRASP_SYNC_ADAPTIVE_RUNNING",
           boolean, "let the running-sync cap follow the scheduler's lateness, from 2 per core "
           "up to --sync-max-running, starting at 8 per core", kind="switch",
           default_text="off"),
)
# fmt: on
