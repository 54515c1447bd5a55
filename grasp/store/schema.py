"""SQLite schema of the event store and the SQL built for one NIP-01 filter.

Kept apart from :mod:`grasp.store.sqlite` so the query shapes can be read (and their plans
tested) without the transaction logic around them.
"""

from __future__ import annotations

from grasp.nostr.filters import Filter

#: 1: events, tags, deletions. 2: purgatory's tables (S9.1), created on the first start of a
#: relay that knows them (``CREATE TABLE IF NOT EXISTS``: a version-1 file needs no other step).
#: 3: ``peers`` (S17.1, S17.4, :mod:`grasp.store.peers`), created the same way on the first start
#: of a relay that knows it (the upgrade from 2 is that ``CREATE TABLE IF NOT EXISTS``).
SCHEMA_VERSION = 3

# ``d`` is '' for replaceable kinds and the first d value for addressable ones, NULL otherwise,
# so (kind, pubkey, d) is the replacement key of both classes (S11.2).
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    pubkey     TEXT    NOT NULL,
    kind       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    d          TEXT,
    json       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_address ON events(kind, pubkey, d);
CREATE INDEX IF NOT EXISTS events_created ON events(created_at, id);
CREATE INDEX IF NOT EXISTS events_author ON events(pubkey, kind, created_at);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, created_at);

-- first values of single-letter tags (NIP-01 indexes only tag[1])
CREATE TABLE IF NOT EXISTS tags (
    event_seq  INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    value      TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_lookup ON tags(name, value, event_seq);
CREATE INDEX IF NOT EXISTS tags_event ON tags(event_seq);

-- NIP-09: remembered so a deleted event sent again is refused
CREATE TABLE IF NOT EXISTS deleted_ids (
    id      TEXT NOT NULL,
    pubkey  TEXT NOT NULL,
    PRIMARY KEY (id, pubkey)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deleted_addresses (
    kind    INTEGER NOT NULL,
    pubkey  TEXT    NOT NULL,
    d       TEXT    NOT NULL,
    until   INTEGER NOT NULL,
    PRIMARY KEY (kind, pubkey, d)
) WITHOUT ROWID;

-- purgatory (S9.1, grasp/store/held.py): seq keeps arrival order, times are Unix seconds
CREATE TABLE IF NOT EXISTS held_events (
    seq        INTEGER PRIMARY KEY,
    event_id   TEXT    NOT NULL UNIQUE,
    kind       INTEGER NOT NULL,
    identifier TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    expires_at REAL    NOT NULL,
    json       TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS held_placeholders (
    seq        INTEGER PRIMARY KEY,
    event_id   TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    identifier TEXT    NOT NULL,
    commit_oid TEXT    NOT NULL,
    expires_at REAL    NOT NULL,
    expired    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (event_id, owner, identifier)
);
CREATE TABLE IF NOT EXISTS expired_ids (
    event_id   TEXT PRIMARY KEY,
    expired_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS expired_ids_at ON expired_ids(expired_at);
CREATE TABLE IF NOT EXISTS node_heartbeats (
    node       TEXT PRIMARY KEY,
    beat_at    REAL NOT NULL
) WITHOUT ROWID;
-- S15.1: ids and addresses named by accepted events (GRASP-01 L13 "or are tagged by"),
-- bounded: seq orders them by when they were (last) recorded, the oldest go first
CREATE TABLE IF NOT EXISTS referenced (
    seq       INTEGER PRIMARY KEY,
    target    TEXT    NOT NULL UNIQUE,
    referrer  TEXT    NOT NULL
);
-- S17.1, S17.4 (grasp/store/peers.py): relays we sync with and their health
CREATE TABLE IF NOT EXISTS peers (
    url                TEXT PRIMARY KEY,
    origin             TEXT    NOT NULL,
    discovered_at      REAL    NOT NULL,
    last_error         TEXT,
    failures           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    REAL,
    naughty_until      REAL,
    events_received    INTEGER NOT NULL DEFAULT 0,
    last_reconciled_at REAL
) WITHOUT ROWID;
"""


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


def _driver(flt: Filter) -> str | None:
    """The key that should drive the query: the most selective one present.

    Without statistics SQLite's planner guesses, and it guessed badly (``kinds`` + ``authors``
    or ``kinds`` + ``#p`` walked every event of the kind), so the order is fixed here:
    ids, then tags, then authors, then kinds; with none of them, the time index.
    """
    if flt.ids is not None:
        return "ids"
    if flt.tags:
        return "tags"
    if flt.authors is not None:
        return "authors"
    if flt.kinds is not None:
        return "kinds"
    return None


# Driver -> (INDEXED BY clause, columns that may use an index). Columns outside the set get
# SQLite's unary ``+``, which keeps them out of index selection without changing their value.
_PLAN = {
    "ids": ("", {"id"}),
    "tags": ("", set()),
    "authors": (" INDEXED BY events_author", {"pubkey", "kind", "created_at"}),
    "kinds": (" INDEXED BY events_kind", {"kind", "created_at"}),
    None: ("", {"created_at"}),
}


def filter_query(
    flt: Filter, limit: int, columns: str = "e.id, e.created_at, e.json"
) -> tuple[str, list[object]]:
    """SELECT of one filter: every key a WHERE term, newest first, lowest id on ties.

    ``columns`` narrows what is read: NIP-77 needs only ``e.created_at, e.id`` (S17.3), and
    leaving the JSON out keeps a reconciliation over 100,000 events from reading every text.

    Tag constraints are ``seq IN (subquery on tags_lookup)`` so a tag-driven query reads the
    tag index first and then only the matching event rows.
    """
    indexed_by, indexable = _PLAN[_driver(flt)]

    def column(name: str) -> str:
        return f"e.{name}" if name in indexable else f"+e.{name}"

    where: list[str] = []
    params: list[object] = []
    for name, values in (("id", flt.ids), ("pubkey", flt.authors), ("kind", flt.kinds)):
        if values is not None:
            ordered = sorted(values)
            where.append(f"{column(name)} IN ({_placeholders(len(ordered))})")
            params.extend(ordered)
    if flt.since is not None:
        where.append(f"{column('created_at')} >= ?")
        params.append(flt.since)
    if flt.until is not None:
        where.append(f"{column('created_at')} <= ?")
        params.append(flt.until)
    for letter in sorted(flt.tags):
        tag_values = sorted(flt.tags[letter])
        where.append(
            "e.seq IN (SELECT t.event_seq FROM tags t WHERE t.name = ? "
            f"AND t.value IN ({_placeholders(len(tag_values))}))"
        )
        params.append(letter)
        params.extend(tag_values)
    sql = f"SELECT {columns} FROM events e{indexed_by}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY e.created_at DESC, e.id ASC LIMIT ?"
    params.append(limit)
    return sql, params
