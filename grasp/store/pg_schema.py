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
    Migration(1, "events, single-letter tag index, NIP-09 deletions", """
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
"""),
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
            raise StoreError(f"event store {location} has schema version {newest}; "
                             f"this relay knows {SCHEMA_VERSION}")
        done = []
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (migration.version, migration.name))
            logger.info("event store %s: applied migration %d (%s)", location,
                        migration.version, migration.name)
            done.append(migration.version)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, MIGRATION_LOCK))


def encode(text: str) -> bytes:
    """A ``d`` or tag value as stored: UTF-8 bytes (see the module docstring)."""
    return text.encode("utf-8")


def filter_query(flt: Filter, limit: int) -> tuple[str, list[object]]:
    """SELECT of one filter: every key a WHERE term, newest first, lowest id on ties.

    Value lists are bound as one array each (``= ANY(%s)``), so every filter of one shape is
    one statement that psycopg prepares once per connection; the planner picks the index
    from the table's statistics.
    """
    where: list[str] = []
    params: list[object] = []
    for column, values, cast in (("id", flt.ids, "text[]"), ("pubkey", flt.authors, "text[]"),
                                 ("kind", flt.kinds, "integer[]")):
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
        where.append("e.seq IN (SELECT t.event_seq FROM tags t "
                     "WHERE t.name = %s AND t.value = ANY(%s::bytea[]))")
        params.append(letter)
        params.append([encode(v) for v in sorted(flt.tags[letter])])
    sql = "SELECT e.id, e.created_at, e.json FROM events e"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY e.created_at DESC, e.id LIMIT %s"
    params.append(limit)
    return sql, params
