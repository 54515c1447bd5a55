"""The event store on PostgreSQL, for relay processes that share one database (S19.1).

Same semantics as the SQLite store (S11.2 replace rules with the lowest-id tie-break, NIP-09
deletions, first-value tag index), checked by the same contract suite. What is different is
concurrency: SQLite serialises every write in one process, while here many connections (and
later many relay processes) write at once. So each save takes transaction-level advisory locks
on the keys its decision reads — its own id, its replacement address, and for a deletion every
target id and address — in sorted order in one statement before reading anything. Two saves
that could decide differently in parallel (two versions of one address, an event and its
deletion) therefore run one after the other; unrelated saves never wait for each other.

Driver: psycopg 3 with a ``psycopg_pool`` connection pool. Under gevent's monkey patching
psycopg waits for the server through the patched ``select`` (it detects the patching), so a
query parks only its own greenlet; docs/scaling.rst has the measurements behind the choice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors
from psycopg_pool import ConnectionPool, PoolTimeout

from grasp.nostr import kinds
from grasp.nostr.address import DeletionRequest
from grasp.nostr.event import Event
from grasp.nostr.filters import Filter
from grasp.store import held as held_sql
from grasp.store.base import DEFAULT_LIMIT_CAP, DEFAULT_MAX_REFERENCES, SaveOutcome, StoreError
from grasp.store.held import HeldChanges, HeldDelta, HeldSnapshot
from grasp.store.peers import (
    LOAD_PEERS,
    MAX_PEER_ROWS,
    UPSERT_PEER,
    PeerRow,
    peer_params,
    peer_row,
)
from grasp.store.pg_schema import EVENT_KEY_CLASS, encode, filter_query, migrate
from grasp.store.rules import (
    RECORD_COLUMNS,
    effective_limit,
    index_rows,
    newest_first,
    record_limit,
    replacement_d,
    runnable,
)

logger = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = 10
#: Advisory lock class of the per-identifier release lock (S19.2); events use EVENT_KEY_CLASS.
REPOSITORY_LOCK_CLASS = 0x6774
#: A save that lost a deadlock (only possible between deletions and replacements sharing rows)
#: is retried this many times; the whole statement is redone, nothing is half-applied.
SAVE_ATTEMPTS = 3


def redact(url: str) -> str:
    """``url`` without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


_SAVE = "SELECT grasp_save_event(" + ", ".join(["%s"] * 14) + ")"
# A target referenced again takes the seq its insert attempt drew: it becomes the newest, and
# every row draws exactly one value, so seq has no gaps for the bound to miscount (S15.1).
_ADD_REFERENCES = """
INSERT INTO referenced (target, referrer) SELECT t, %s FROM unnest(%s::bytea[]) AS t
ON CONFLICT (target) DO UPDATE SET referrer = excluded.referrer, seq = excluded.seq
"""
_PRUNE_REFERENCES = "DELETE FROM referenced WHERE seq <= (SELECT max(seq) FROM referenced) - %s"


def _key(text: str) -> int:
    """A signed 32-bit advisory lock key for one id or address (collisions only serialise)."""
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=4).digest(), "big", signed=True
    )


def lock_keys(event: Event, d: str | None, request: DeletionRequest | None) -> list[int]:
    """The sorted keys a save of ``event`` must hold: everything its decision reads."""
    names = {f"id:{event.id}"}
    if d is not None:
        names.add(f"addr:{event.kind}:{event.pubkey}:{d}")
    if request is not None:
        names.update(f"id:{target}" for target in request.event_ids)
        names.update(f"addr:{a.kind}:{a.pubkey}:{a.d}" for a in request.addresses)
    return sorted({_key(name) for name in names})


def save_params(event: Event) -> tuple[object, ...]:
    """The arguments of ``grasp_save_event()`` for ``event`` (see migration 2)."""
    d = replacement_d(event)
    # PostgreSQL text cannot hold NUL: a NUL tag *name* is never a NIP-01 filter letter, so
    # such a row could never be asked for and is left out.
    rows = [(name, encode(value)) for name, value in index_rows(event) if name != "\x00"]
    request = DeletionRequest.from_event(event) if event.kind == kinds.DELETION else None
    return (
        event.id,
        event.pubkey,
        event.kind,
        event.created_at,
        None if d is None else encode(d),
        event.to_json_text(),
        [n for n, _ in rows],
        [v for _, v in rows],
        EVENT_KEY_CLASS,
        lock_keys(event, d, request),
        request is not None,
        sorted(request.event_ids) if request else [],
        [a.kind for a in request.addresses] if request else [],
        [encode(a.d) for a in request.addresses] if request else [],
    )


_CHANGED_KEYS = (
    "SELECT DISTINCT table_name, event_id, owner, identifier FROM held_log WHERE version > %s"
)
_CHANGED_EVENTS = (
    "SELECT event_id, kind, identifier, source, expires_at, json FROM held_events "
    "WHERE event_id = ANY(%s::text[]) ORDER BY seq"
)
_CHANGED_PLACEHOLDERS = (
    "SELECT event_id, owner, identifier, commit_oid, expires_at, expired FROM held_placeholders "
    "WHERE (event_id, owner, identifier) IN "
    "(SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])) ORDER BY seq"
)
_CHANGED_EXPIRED = "SELECT event_id, expired_at FROM expired_ids WHERE event_id = ANY(%s::text[])"


def _held_delta(conn: psycopg.Connection[Any], version: int) -> HeldDelta:
    """The keys changed after ``version`` and their current rows (same snapshot)."""
    keys = conn.execute(_CHANGED_KEYS, (version,)).fetchall()
    events = sorted({k[1] for k in keys if k[0] == "held_events"})
    placeholders = sorted({(k[1], k[2], k[3]) for k in keys if k[0] == "held_placeholders"})
    expired = sorted({k[1] for k in keys if k[0] == "expired_ids"})
    columns = [list(c) for c in zip(*placeholders, strict=True)] if placeholders else [[], [], []]
    return HeldDelta(
        tuple(events),
        tuple(placeholders),
        tuple(expired),
        held_sql.snapshot_from(
            conn.execute(_CHANGED_EVENTS, (events,)).fetchall() if events else [],
            conn.execute(_CHANGED_PLACEHOLDERS, columns).fetchall() if placeholders else [],
            conn.execute(_CHANGED_EXPIRED, (expired,)).fetchall() if expired else [],
        ),
    )


class PostgresEventStore:
    """NIP-01 event storage on PostgreSQL; ``PostgresEventStore("postgresql://...")``.

    Implements :class:`grasp.store.base.EventStore`. Opening applies the schema migrations the
    database lacks (:func:`grasp.store.pg_schema.migrate`); ``pool_size`` bounds the
    connections this store holds, so it bounds the store calls that run at once.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        connect_timeout: int = 10,
        max_references: int = DEFAULT_MAX_REFERENCES,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, not {pool_size}")
        self.url = url
        self.location = redact(url)
        self.max_references = max_references
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout) as conn:
                migrate(conn, self.location)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open event store {self.location}: {exc}") from exc
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            name="grasp-events",
            kwargs={"autocommit": True, "connect_timeout": connect_timeout},
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(f"cannot open event store {self.location}: {exc}") from exc

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; a lost server or an exhausted pool becomes :class:`StoreError`
        (a deadlock stays itself: :meth:`save` retries it)."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except errors.TransactionRollback:
            raise
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreError(f"event store {self.location} unavailable: {exc}") from exc

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A pooled autocommit connection for the cluster coordination of the same database
        (:mod:`grasp.store.cluster`: leases and the throttle ledger share this pool)."""
        return self._connection()

    # --- writes -------------------------------------------------------------------------------

    def save(self, event: Event, held: HeldChanges | None = None) -> SaveOutcome:
        """Store a validated event under the NIP-01 replace and NIP-09 delete rules (S11.2).

        One statement, ``grasp_save_event()`` (migration 2), so one round trip: the rules run
        next to the data, under the keys' advisory locks. With ``held``, purgatory's changes
        run in the same transaction (S9.1).
        """
        if event.storage_class is kinds.StorageClass.EPHEMERAL and not held:
            return SaveOutcome.EPHEMERAL
        return self.save_all([event], held)[0]

    def save_all(
        self, events: Sequence[Event], held: HeldChanges | None = None
    ) -> list[SaveOutcome]:
        """:meth:`save` of each of ``events`` in order, and ``held``, in one transaction
        (retried whole when it loses a deadlock)."""
        params = [save_params(event) for event in events]
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            try:
                with self._connection() as conn, conn.transaction():
                    outcomes = [
                        self._save_in(conn, e, p) for e, p in zip(events, params, strict=True)
                    ]
                    if held:
                        self._apply_held(conn, held)
                return outcomes
            except errors.TransactionRollback:
                if attempt == SAVE_ATTEMPTS:
                    raise
                first = events[0].id if events else "nothing"
                logger.debug("save of %s lost a deadlock; attempt %d", first, attempt + 1)
        raise AssertionError("unreachable")

    # --- peers (S17.1, S17.4, migration 5) ---------------------------------------------------

    def save_peer(self, row: PeerRow) -> None:
        with self._connection() as conn, conn.transaction():
            conn.execute("LOCK TABLE peers IN SHARE ROW EXCLUSIVE MODE")  # the count is the bound
            known = conn.execute("SELECT 1 FROM peers WHERE url = %s", (row.url,)).fetchone()
            if not known:
                (count,) = conn.execute("SELECT count(*) FROM peers").fetchone() or (0,)
                if count >= MAX_PEER_ROWS:
                    return
            conn.execute(UPSERT_PEER.replace("?", "%s"), peer_params(row))

    def load_peers(self) -> list[PeerRow]:
        with self._connection() as conn:
            return [peer_row(tuple(values)) for values in conn.execute(LOAD_PEERS).fetchall()]

    # --- the referenced-ids index (S15.1, migration 4) -----------------------------------------

    def add_references(self, referrer: str, targets: Iterable[str]) -> None:
        """Record (or refresh) each target; past ``max_references`` the oldest go (S15.1)."""
        wanted = [encode(target) for target in sorted(set(targets))]
        if not wanted:
            return
        with self._connection() as conn, conn.transaction():
            conn.execute(_ADD_REFERENCES, (referrer, wanted))
            conn.execute(_PRUNE_REFERENCES, (self.max_references,))

    def referrer_of(self, targets: Iterable[str]) -> str | None:
        wanted = [encode(target) for target in sorted(set(targets))]
        if not wanted:
            return None
        with self._connection() as conn:
            row = conn.execute(
                "SELECT referrer FROM referenced WHERE target = ANY(%s::bytea[]) LIMIT 1",
                (wanted,),
            ).fetchone()
        return str(row[0]) if row else None

    @staticmethod
    def _save_in(conn: psycopg.Connection[Any], event: Event, params: tuple) -> SaveOutcome:
        if event.storage_class is kinds.StorageClass.EPHEMERAL:
            return SaveOutcome.EPHEMERAL
        row = conn.execute(_SAVE, params).fetchone()
        assert row is not None
        return SaveOutcome(row[0])

    # --- purgatory's tables (S9.1, grasp/store/held.py) ---------------------------------------

    def write_held(self, changes: HeldChanges) -> None:
        if changes:
            with self._connection() as conn, conn.transaction():
                self._apply_held(conn, changes)

    @staticmethod
    def _apply_held(conn: psycopg.Connection[Any], changes: HeldChanges) -> None:
        with conn.cursor() as cur:
            for sql, rows in held_sql.held_statements(changes, "%s"):
                cur.executemany(sql, rows)

    def load_held(self) -> HeldSnapshot:
        with self._connection() as conn:
            return held_sql.snapshot_from(
                conn.execute(held_sql.LOAD_EVENTS).fetchall(),
                conn.execute(held_sql.LOAD_PLACEHOLDERS).fetchall(),
                conn.execute(held_sql.LOAD_EXPIRED).fetchall(),
            )

    @contextmanager
    def repository_lock(self, identifier: str) -> Iterator[None]:
        """A session advisory lock (class :data:`REPOSITORY_LOCK_CLASS`) on a connection kept
        for the pass: waiting for another node's pass parks only this greenlet. Should the
        connection die mid-pass, the server drops the lock; git's ref lock files and the
        compare-and-swap of every ref update still keep each ref consistent."""
        key = _key(f"repo:{identifier}")
        with self._connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (REPOSITORY_LOCK_CLASS, key))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (REPOSITORY_LOCK_CLASS, key))

    def load_held_since(self, version: int) -> tuple[int, HeldSnapshot | HeldDelta | None]:
        """See :meth:`grasp.store.base.EventStore.load_held_since`. The version, the change
        log and the rows are read in one REPEATABLE READ snapshot, so they belong together
        (migration 7); a version older than the log's horizon gets everything."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = conn.execute("SELECT version FROM held_version").fetchone()
            current = int(row[0]) if row else 0
            if current == version:
                return current, None
            oldest = conn.execute("SELECT min(version) FROM held_log").fetchone()
            if version > 0 and oldest and oldest[0] is not None and oldest[0] <= version + 1:
                return current, _held_delta(conn, version)
            return current, held_sql.snapshot_from(
                conn.execute(held_sql.LOAD_EVENTS).fetchall(),
                conn.execute(held_sql.LOAD_PLACEHOLDERS).fetchall(),
                conn.execute(held_sql.LOAD_EXPIRED).fetchall(),
            )

    def resume(self, node: str, now: float) -> float:
        """See :meth:`grasp.store.base.EventStore.resume`; the table lock makes nodes that
        start at once take turns, so the second one sees the first one's heartbeat."""
        with self._connection() as conn, conn.transaction():
            conn.execute("LOCK TABLE node_heartbeats IN SHARE ROW EXCLUSIVE MODE")
            row = conn.execute(held_sql.LAST_HEARTBEAT).fetchone()
            last = row[0] if row else None
            downtime = max(0.0, now - last) if last is not None else 0.0
            if downtime > 0:
                for sql in held_sql.SHIFT_DEADLINES:
                    conn.execute(sql.replace("?", "%s"), (downtime,))
            conn.execute(
                held_sql.FORGET_NODES.replace("?", "%s"), (now - held_sql.NODE_MEMORY_SECS,)
            )
            conn.execute(held_sql.HEARTBEAT.replace("?", "%s"), (node, now))
        return downtime

    def heartbeat(self, node: str, now: float) -> None:
        with self._connection() as conn:
            conn.execute(held_sql.HEARTBEAT.replace("?", "%s"), (node, now))

    # --- reads --------------------------------------------------------------------------------

    def query(self, filters: Sequence[Filter], limit_cap: int = DEFAULT_LIMIT_CAP) -> list[Event]:
        """NIP-01 REQ semantics: the OR of ``filters``, newest first, lowest id on ties."""
        return [
            Event.from_trusted_json(json.loads(text))
            for text in self.query_json(filters, limit_cap)
        ]

    def query_json(
        self, filters: Sequence[Filter], limit_cap: int = DEFAULT_LIMIT_CAP
    ) -> list[str]:
        """Like :meth:`query` but the stored JSON texts, for relays that splice them into frames."""
        wanted = [flt for flt in filters if runnable(flt, limit_cap)]
        if not wanted:
            return []
        rows: list[tuple[str, int, str]] = []
        with self._connection() as conn, conn.cursor() as cur:
            for flt in wanted:
                sql, params = filter_query(flt, effective_limit(flt, limit_cap))
                rows.extend(cur.execute(sql, params).fetchall())
        return newest_first(rows)

    def records(self, flt: Filter, limit: int) -> list[tuple[int, str]]:
        """``(created_at, id)`` of the stored events matching ``flt`` (NIP-77, S17.3)."""
        wanted = record_limit(flt, limit)
        if wanted <= 0:
            return []
        sql, params = filter_query(flt, wanted, RECORD_COLUMNS)
        with self._connection() as conn:
            return [(int(at), str(event_id)) for at, event_id in conn.execute(sql, params)]

    def get(self, event_id: str) -> Event | None:
        with self._connection() as conn:
            row = conn.execute("SELECT json FROM events WHERE id = %s", (event_id,)).fetchone()
        return Event.from_trusted_json(json.loads(row[0])) if row else None

    def contains(self, event_id: str) -> bool:
        with self._connection() as conn:
            return (
                conn.execute("SELECT 1 FROM events WHERE id = %s", (event_id,)).fetchone()
                is not None
            )

    def count(self) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT count(*) FROM events").fetchone()
        assert row is not None
        return int(row[0])

    def query_plan(self, flt: Filter, limit_cap: int = DEFAULT_LIMIT_CAP) -> list[str]:
        """EXPLAIN lines of one filter's SELECT (diagnostics and index tests)."""
        sql, params = filter_query(flt, effective_limit(flt, limit_cap) or 1)
        with self._connection() as conn:
            return [row[0] for row in conn.execute("EXPLAIN " + sql, params)]

    def close(self) -> None:
        """Close every pooled connection (waits for calls under way to give theirs back)."""
        self._pool.close()

    def __enter__(self) -> PostgresEventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
