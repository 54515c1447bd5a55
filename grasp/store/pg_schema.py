"""PostgreSQL schema of the event store as numbered migrations, and the SQL of one filter.

Migrations are applied in order at open (:func:`migrate`), each in its own transaction with its
row in ``schema_migrations``, under a session advisory lock so that relay processes starting at
once against one database apply each migration exactly once (S19.1). Later work appends to
:data:`MIGRATIONS` (held events, the referenced-ids index, sync-queue leases, the throttle
ledger); a migration once released is never edited.

Column choices that differ from SQLite (S11.1), and why:

- ``id`` and ``pubkey`` are ``COLLATE "C"``: NIP-01's tie-break is the lowest id in byte order,
  and a database created with a linguistic default collation would order them otherwise.
- ``d`` and tag values are ``bytea`` (UTF-8): PostgreSQL ``text`` cannot hold NUL, which a tag
  value may contain. The event itself is kept as its JSON text, where NUL is escaped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from grasp.nostr.filters import Filter
from grasp.store.base import StoreError

logger = logging.getLogger(__name__)

#: Advisory lock keys: (class, object) pairs, class 0x6772 ("gr") for everything of this relay.
LOCK_CLASS = 0x6772
MIGRATION_LOCK = 1
#: Transaction locks of event keys (ids, replacement addresses) use this class instead.
EVENT_KEY_CLASS = 0x6773


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events, single-letter tag index, NIP-09 deletions",
        """
CREATE TABLE events (
    seq        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         text    COLLATE "C" NOT NULL UNIQUE,
    pubkey     text    COLLATE "C" NOT NULL,
    kind       integer NOT NULL,
    created_at bigint  NOT NULL,
    d          bytea,
    json       text    NOT NULL
);
CREATE INDEX events_address ON events (kind, pubkey, d);
CREATE INDEX events_created ON events (created_at DESC, id);
CREATE INDEX events_author ON events (pubkey, kind, created_at DESC);
CREATE INDEX events_kind ON events (kind, created_at DESC);

CREATE TABLE tags (
    event_seq  bigint NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    name       text   COLLATE "C" NOT NULL,
    value      bytea  NOT NULL
);
CREATE INDEX tags_lookup ON tags (name, value, event_seq);
CREATE INDEX tags_event ON tags (event_seq);

CREATE TABLE deleted_ids (
    id      text COLLATE "C" NOT NULL,
    pubkey  text COLLATE "C" NOT NULL,
    PRIMARY KEY (id, pubkey)
);
CREATE TABLE deleted_addresses (
    kind    integer NOT NULL,
    pubkey  text    COLLATE "C" NOT NULL,
    d       bytea   NOT NULL,
    until   bigint  NOT NULL,
    PRIMARY KEY (kind, pubkey, d)
);
""",
    ),
    Migration(
        2,
        "grasp_save_event(): a save in one statement",
        """
-- One round trip per save (S11.2 in SQL; the Python side only parses and maps the outcome).
-- It first takes the advisory locks of every key its decision reads, in sorted order; each
-- later statement of a VOLATILE function takes a new snapshot under READ COMMITTED, so the
-- reads see what the transaction it waited for committed.
CREATE FUNCTION grasp_save_event(
    p_id text, p_pubkey text, p_kind integer, p_created_at bigint, p_d bytea, p_json text,
    p_tag_names text[], p_tag_values bytea[], p_lock_class integer, p_lock_keys integer[],
    p_is_deletion boolean, p_deleted_ids text[], p_deleted_kinds integer[], p_deleted_ds bytea[]
) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_seq bigint;
    v_until bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock_class, k)
        FROM (SELECT unnest(p_lock_keys) AS k ORDER BY 1) AS ordered;
    IF EXISTS (SELECT 1 FROM events WHERE id = p_id) THEN
        RETURN 'duplicate';
    END IF;
    IF NOT p_is_deletion THEN  -- NIP-09: deleting a deletion has no effect
        IF EXISTS (SELECT 1 FROM deleted_ids WHERE id = p_id AND pubkey = p_pubkey) THEN
            RETURN 'deleted-target';
        END IF;
        IF p_d IS NOT NULL THEN
            SELECT until INTO v_until FROM deleted_addresses
             WHERE kind = p_kind AND pubkey = p_pubkey AND d = p_d;
            IF v_until IS NOT NULL AND p_created_at <= v_until THEN
                RETURN 'deleted-target';
            END IF;
        END IF;
    END IF;
    IF p_d IS NOT NULL THEN  -- latest wins; the same second: the lowest id (S11.2)
        IF EXISTS (SELECT 1 FROM events
                    WHERE kind = p_kind AND pubkey = p_pubkey AND d = p_d
                      AND (created_at > p_created_at
                           OR (created_at = p_created_at AND id < p_id COLLATE "C"))) THEN
            RETURN 'replaced-newer-exists';
        END IF;
        DELETE FROM events WHERE kind = p_kind AND pubkey = p_pubkey AND d = p_d;
    END IF;
    IF p_is_deletion THEN  -- same-author targets only, never other deletions; remembered
        INSERT INTO deleted_ids (id, pubkey) SELECT t, p_pubkey FROM unnest(p_deleted_ids) AS t
            ON CONFLICT DO NOTHING;
        DELETE FROM events WHERE id = ANY (p_deleted_ids) AND pubkey = p_pubkey AND kind <> 5;
        INSERT INTO deleted_addresses (kind, pubkey, d, until)
            SELECT a.k, p_pubkey, a.dd, p_created_at
              FROM unnest(p_deleted_kinds, p_deleted_ds) AS a (k, dd)
            ON CONFLICT (kind, pubkey, d)
            DO UPDATE SET until = greatest(deleted_addresses.until, excluded.until);
        DELETE FROM events e USING unnest(p_deleted_kinds, p_deleted_ds) AS a (k, dd)
         WHERE e.kind = a.k AND e.pubkey = p_pubkey AND e.d = a.dd
           AND e.created_at <= p_created_at;
    END IF;
    INSERT INTO events (id, pubkey, kind, created_at, d, json)
        VALUES (p_id, p_pubkey, p_kind, p_created_at, p_d, p_json) RETURNING seq INTO v_seq;
    INSERT INTO tags (event_seq, name, value)
        SELECT v_seq, t.n, t.v FROM unnest(p_tag_names, p_tag_values) AS t (n, v);
    RETURN 'saved';
END
$$;
""",
    ),
    Migration(
        3,
        "purgatory: held events, placeholders, expired ids, node heartbeats",
        """
-- S9.1 (grasp/store/held.py): seq keeps arrival order, times are Unix seconds (wall clock).
CREATE TABLE held_events (
    seq        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   text    COLLATE "C" NOT NULL UNIQUE,
    kind       integer NOT NULL,
    identifier text    NOT NULL,
    source     text    NOT NULL,
    expires_at double precision NOT NULL,
    json       text    NOT NULL
);
CREATE TABLE held_placeholders (
    seq        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   text    COLLATE "C" NOT NULL,
    owner      text    COLLATE "C" NOT NULL,
    identifier text    NOT NULL,
    commit_oid text    NOT NULL,
    expires_at double precision NOT NULL,
    expired    integer NOT NULL DEFAULT 0,
    UNIQUE (event_id, owner, identifier)
);
CREATE TABLE expired_ids (
    event_id   text    COLLATE "C" PRIMARY KEY,
    expired_at double precision NOT NULL
);
CREATE INDEX expired_ids_at ON expired_ids (expired_at);
-- one row per relay process sharing the database (S19.2): downtime is "no node beating"
CREATE TABLE node_heartbeats (
    node       text    PRIMARY KEY,
    beat_at    double precision NOT NULL
);
""",
    ),
    Migration(
        4,
        "referenced-ids index (S15.1)",
        """
-- Ids and addresses named by accepted events: GRASP-01 L13 accepts an event "tagged by" an
-- accepted one, which may have arrived first. Bounded by the store: seq orders the targets by
-- when they were (last) recorded and the oldest are deleted first. target is bytea (UTF-8) as
-- the tag values are: an address's d may hold NUL.
CREATE TABLE referenced (
    seq       bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    target    bytea  NOT NULL UNIQUE,
    referrer  text   COLLATE "C" NOT NULL
);
""",
    ),
    Migration(
        5,
        "peers and their health (S17.1, S17.4)",
        """
-- grasp/store/peers.py: relays we sync with; shared by every node of a cluster
CREATE TABLE peers (
    url                text    COLLATE "C" PRIMARY KEY,
    origin             text    NOT NULL,
    discovered_at      double precision NOT NULL,
    last_error         text,
    failures           integer NOT NULL DEFAULT 0,
    next_attempt_at    double precision,
    naughty_until      double precision,
    events_received    bigint  NOT NULL DEFAULT 0,
    last_reconciled_at double precision
);
""",
    ),
    Migration(
        6,
        "identifier leases and the throttle ledger (S19.2)",
        """
-- One row per identifier being synced by some node; free again once expires_at passed (the
-- node renews it while the sync runs; grasp/store/cluster.py says why rows, not advisory locks).
CREATE TABLE sync_leases (
    identifier text COLLATE "C" PRIMARY KEY,
    node       text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sync_leases_node ON sync_leases (node);
-- One row per request a node started on a domain: in flight while ended_at is NULL, then in
-- the rate window until one window after ended_at (S6.1 summed over nodes). An in-flight row
-- whose node stopped renewing it ends at expires_at.
CREATE TABLE throttle_slots (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain     text NOT NULL,
    node       text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    expires_at timestamptz NOT NULL
);
CREATE INDEX throttle_slots_domain ON throttle_slots (domain, ended_at);
CREATE INDEX throttle_slots_node ON throttle_slots (node) WHERE ended_at IS NULL;
-- The check-and-start (S6.4): one statement, one transaction, serialised per domain by a
-- transaction advisory lock (class 0x6774). Refused, retry_in says when to ask again: when the
-- oldest window entry leaves, or p_poll when requests in flight (maybe another node's) fill it.
CREATE FUNCTION grasp_ledger_start(
    p_domain text, p_node text, p_max_concurrent integer, p_max_per_window integer,
    p_window double precision, p_ttl double precision, p_poll double precision,
    OUT granted boolean, OUT retry_in double precision
) LANGUAGE plpgsql AS $$
DECLARE
    t_now    timestamptz;
    n_flight integer;
    n_used   integer;
    t_oldest timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(26484, hashtext(p_domain));
    t_now := clock_timestamp();
    UPDATE throttle_slots SET ended_at = expires_at
        WHERE domain = p_domain AND ended_at IS NULL AND expires_at <= t_now;
    DELETE FROM throttle_slots
        WHERE domain = p_domain AND ended_at <= t_now - make_interval(secs => p_window);
    SELECT count(*) FILTER (WHERE ended_at IS NULL), count(*), min(ended_at)
        INTO n_flight, n_used, t_oldest
        FROM throttle_slots WHERE domain = p_domain;
    IF n_flight < p_max_concurrent AND n_used < p_max_per_window THEN
        INSERT INTO throttle_slots (domain, node, started_at, expires_at)
            VALUES (p_domain, p_node, t_now, t_now + make_interval(secs => p_ttl));
        granted := true;
        retry_in := 0;
    ELSIF n_flight < p_max_concurrent AND t_oldest IS NOT NULL THEN
        granted := false;
        retry_in := greatest(
            extract(epoch FROM t_oldest + make_interval(secs => p_window) - t_now), 0);
    ELSE
        granted := false;
        retry_in := p_poll;
    END IF;
END
$$;
""",
    ),
    Migration(
        7,
        "purgatory's change log: a version and the keys each change touched (S19.2)",
        """
-- One truth across nodes (docs/scaling.rst): each node caches purgatory in memory and, before
-- a decision, applies what other nodes changed since its last look. Every row change of the
-- three held tables bumps held_version and logs the key it touched under that version, in the
-- writing transaction. The version is a row, not a sequence: its row lock orders the writers
-- by commit, so a reader's snapshot holds every change up to the version it reads, and no
-- later-committing change can carry a lower version (a sequence would allow both).
CREATE TABLE held_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  bigint  NOT NULL
);
INSERT INTO held_version (version) VALUES (1);
CREATE TABLE held_log (
    version    bigint PRIMARY KEY,
    table_name text   NOT NULL,
    event_id   text   COLLATE "C" NOT NULL,
    owner      text   COLLATE "C" NOT NULL DEFAULT '',
    identifier text   NOT NULL DEFAULT ''
);
CREATE FUNCTION grasp_held_logged() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
    r record;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    UPDATE held_version SET version = version + 1 RETURNING version INTO v;
    IF TG_TABLE_NAME = 'held_placeholders' THEN
        INSERT INTO held_log VALUES (v, TG_TABLE_NAME, r.event_id, r.owner, r.identifier);
    ELSE
        INSERT INTO held_log (version, table_name, event_id) VALUES (v, TG_TABLE_NAME, r.event_id);
    END IF;
    IF v % 1000 = 0 THEN  -- keep the last 100,000 changes; a node further behind reloads all
        DELETE FROM held_log WHERE version <= v - 100000;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER held_events_logged AFTER INSERT OR UPDATE OR DELETE ON held_events
    FOR EACH ROW EXECUTE FUNCTION grasp_held_logged();
CREATE TRIGGER held_placeholders_logged AFTER INSERT OR UPDATE OR DELETE ON held_placeholders
    FOR EACH ROW EXECUTE FUNCTION grasp_held_logged();
CREATE TRIGGER expired_ids_logged AFTER INSERT OR UPDATE OR DELETE ON expired_ids
    FOR EACH ROW EXECUTE FUNCTION grasp_held_logged();
""",
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def migrate(conn: Any, location: str) -> list[int]:
    """Apply the migrations ``conn``'s database lacks; return the versions applied now.

    ``conn`` is a psycopg connection in autocommit mode. Refuses a database whose newest
    migration is one this relay does not know (a newer relay wrote it).
    """
    conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, MIGRATION_LOCK))
    try:
        conn.execute(_LEDGER)
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        newest = max(applied, default=0)
        if newest > SCHEMA_VERSION:
            raise StoreError(
                f"event store {location} has schema version {newest}; "
                f"this relay knows {SCHEMA_VERSION}"
            )
        done = []
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            logger.info(
                "event store %s: applied migration %d (%s)",
                location,
                migration.version,
                migration.name,
            )
            done.append(migration.version)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, MIGRATION_LOCK))


def encode(text: str) -> bytes:
    """A ``d`` or tag value as stored: UTF-8 bytes (see the module docstring)."""
    return text.encode("utf-8")


def filter_query(
    flt: Filter, limit: int, columns: str = "e.id, e.created_at, e.json"
) -> tuple[str, list[object]]:
    """SELECT of one filter: every key a WHERE term, newest first, lowest id on ties.

    ``columns`` narrows what is read (NIP-77 reads ``e.created_at, e.id`` only, S17.3).

    Value lists are bound as one array each (``= ANY(%s)``), so every filter of one shape is
    one statement that psycopg prepares once per connection; the planner picks the index
    from the table's statistics.
    """
    where: list[str] = []
    params: list[object] = []
    for column, values, cast in (
        ("id", flt.ids, "text[]"),
        ("pubkey", flt.authors, "text[]"),
        ("kind", flt.kinds, "integer[]"),
    ):
        if values is not None:
            where.append(f"e.{column} = ANY(%s::{cast})")
            params.append(sorted(values))
    if flt.since is not None:
        where.append("e.created_at >= %s")
        params.append(flt.since)
    if flt.until is not None:
        where.append("e.created_at <= %s")
        params.append(flt.until)
    for letter in sorted(flt.tags):
        where.append(
            "e.seq IN (SELECT t.event_seq FROM tags t "
            "WHERE t.name = %s AND t.value = ANY(%s::bytea[]))"
        )
        params.append(letter)
        params.append([encode(v) for v in sorted(flt.tags[letter])])
    sql = f"SELECT {columns} FROM events e"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY e.created_at DESC, e.id LIMIT %s"
    params.append(limit)
    return sql, params
