"""The default event store: one SQLite file in WAL mode (S11).

Replaceable/addressable events keep only the latest version per (kind, pubkey[, d]) with the
NIP-01 tie-break (equal ``created_at`` -> lowest id wins, S11.2); ephemeral events are never
stored; NIP-09 deletions remove same-author targets and are remembered, so a deleted event that
is sent again is refused.

Concurrency: one connection guarded by one *OS-level* re-entrant lock. sqlite3 calls block the
gevent hub and never yield, so greenlets of one thread are serialised by construction; the lock
is for real threads (a gevent thread pool). It must be the unpatched lock: a gevent-patched lock
held by a pool thread makes a waiting greenlet end in ``LoopExit`` (measured in
tests/store/test_sqlite.py). Transactions are a few statements, so a greenlet waiting on a
thread's transaction blocks the hub only briefly.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from gevent.monkey import get_original

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
from grasp.store.rules import (
    RECORD_COLUMNS,
    effective_limit,
    held_version_wins,
    index_rows,
    newest_first,
    record_limit,
    replacement_d,
    runnable,
)
from grasp.store.schema import SCHEMA, SCHEMA_VERSION, filter_query

logger = logging.getLogger(__name__)

_OsRLock = get_original("_thread", "RLock")

DEFAULT_FILENAME = "events.sqlite3"

__all__ = [
    "DEFAULT_FILENAME",
    "DEFAULT_LIMIT_CAP",
    "EventStore",
    "SaveOutcome",
    "SqliteEventStore",
    "StoreError",
]


class SqliteEventStore:
    """NIP-01 event storage on SQLite; ``SqliteEventStore(data_dir / "events.sqlite3")``.

    Implements :class:`grasp.store.base.EventStore`.
    """

    def __init__(self, path: Path, *, max_references: int = DEFAULT_MAX_REFERENCES) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.max_references = max_references
        self._lock = _OsRLock()
        try:
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=5.0
            )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open event store {self.path}: {exc}") from exc
        try:
            self._setup()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"cannot open event store {self.path}: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    def _setup(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"event store {self.path} has schema version {version}; "
                f"this relay knows {SCHEMA_VERSION}"
            )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        db.executescript(SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- writes -------------------------------------------------------------------------------

    def save(self, event: Event, held: HeldChanges | None = None) -> SaveOutcome:
        """Store a validated event under the NIP-01 replace and NIP-09 delete rules (S11.2),
        and apply ``held`` to purgatory's tables in the same transaction (S9.1)."""
        return self.save_all([event], held)[0]

    def save_all(
        self, events: Sequence[Event], held: HeldChanges | None = None
    ) -> list[SaveOutcome]:
        """:meth:`save` of each of ``events`` in order, and ``held``, in one transaction."""
        with self._write() as db:
            outcomes = [self._save_in(db, event) for event in events]
            if held:
                self._apply_held(db, held)
        return outcomes

    def _save_in(self, db: sqlite3.Connection, event: Event) -> SaveOutcome:
        if event.storage_class is kinds.StorageClass.EPHEMERAL:
            return SaveOutcome.EPHEMERAL
        d = replacement_d(event)
        if db.execute("SELECT 1 FROM events WHERE id = ?", (event.id,)).fetchone():
            return SaveOutcome.DUPLICATE
        if self._is_deleted(db, event, d):
            return SaveOutcome.DELETED_TARGET
        if d is not None:
            held = db.execute(
                "SELECT seq, created_at, id FROM events WHERE kind = ? AND pubkey = ? AND d = ?",
                (event.kind, event.pubkey, d),
            ).fetchall()
            if any(held_version_wins(at, held_id, event) for _, at, held_id in held):
                return SaveOutcome.REPLACED_NEWER_EXISTS
            self._delete_seqs(db, [seq for seq, _, _ in held])
        if event.kind == kinds.DELETION:
            self._apply_deletion(db, DeletionRequest.from_event(event))
        self._insert(db, event, d)
        return SaveOutcome.SAVED

    # --- purgatory's tables (S9.1, grasp/store/held.py) ---------------------------------------

    def write_held(self, changes: HeldChanges) -> None:
        if changes:
            with self._write() as db:
                self._apply_held(db, changes)

    @staticmethod
    def _apply_held(db: sqlite3.Connection, changes: HeldChanges) -> None:
        for sql, rows in held_sql.held_statements(changes, "?"):
            db.executemany(sql, rows)

    def load_held(self) -> HeldSnapshot:
        with self._lock:
            return held_sql.snapshot_from(
                self._db.execute(held_sql.LOAD_EVENTS).fetchall(),
                self._db.execute(held_sql.LOAD_PLACEHOLDERS).fetchall(),
                self._db.execute(held_sql.LOAD_EXPIRED).fetchall(),
            )

    @contextmanager
    def repository_lock(self, identifier: str) -> Iterator[None]:
        """One process, one Releaser: it is the only writer of refs already (S8.1)."""
        yield

    def load_held_since(self, version: int) -> tuple[int, HeldSnapshot | HeldDelta | None]:
        """Only this process writes the file, so purgatory's cache is always the truth."""
        return version, None

    def resume(self, node: str, now: float) -> float:
        with self._write() as db:
            (last,) = db.execute(held_sql.LAST_HEARTBEAT).fetchone()
            downtime = max(0.0, now - last) if last is not None else 0.0
            if downtime > 0:
                for sql in held_sql.SHIFT_DEADLINES:
                    db.execute(sql, (downtime,))
            db.execute(held_sql.FORGET_NODES, (now - held_sql.NODE_MEMORY_SECS,))
            db.execute(held_sql.HEARTBEAT, (node, now))
        return downtime

    def heartbeat(self, node: str, now: float) -> None:
        with self._write() as db:
            db.execute(held_sql.HEARTBEAT, (node, now))

    @staticmethod
    def _is_deleted(db: sqlite3.Connection, event: Event, d: str | None) -> bool:
        if event.kind == kinds.DELETION:
            return False  # NIP-09: deleting a deletion has no effect, whatever the arrival order
        if db.execute(
            "SELECT 1 FROM deleted_ids WHERE id = ? AND pubkey = ?", (event.id, event.pubkey)
        ).fetchone():
            return True
        if d is None:
            return False
        row = db.execute(
            "SELECT until FROM deleted_addresses WHERE kind = ? AND pubkey = ? AND d = ?",
            (event.kind, event.pubkey, d),
        ).fetchone()
        return row is not None and event.created_at <= row[0]

    @staticmethod
    def _insert(db: sqlite3.Connection, event: Event, d: str | None) -> None:
        cursor = db.execute(
            "INSERT INTO events (id, pubkey, kind, created_at, d, json) VALUES (?, ?, ?, ?, ?, ?)",
            (event.id, event.pubkey, event.kind, event.created_at, d, event.to_json_text()),
        )
        seq = cursor.lastrowid
        rows = index_rows(event)
        if rows:
            db.executemany(
                "INSERT INTO tags (event_seq, name, value) VALUES (?, ?, ?)",
                [(seq, name, value) for name, value in rows],
            )

    @staticmethod
    def _delete_seqs(db: sqlite3.Connection, seqs: Sequence[int]) -> None:
        for seq in seqs:
            db.execute("DELETE FROM tags WHERE event_seq = ?", (seq,))
            db.execute("DELETE FROM events WHERE seq = ?", (seq,))

    def _apply_deletion(self, db: sqlite3.Connection, request: DeletionRequest) -> None:
        """NIP-09: drop same-author targets (never other deletions) and remember the request."""
        for target in sorted(request.event_ids):
            db.execute(
                "INSERT OR IGNORE INTO deleted_ids (id, pubkey) VALUES (?, ?)",
                (target, request.author),
            )
            seqs = db.execute(
                "SELECT seq FROM events WHERE id = ? AND pubkey = ? AND kind != ?",
                (target, request.author, kinds.DELETION),
            ).fetchall()
            self._delete_seqs(db, [seq for (seq,) in seqs])
        for address in request.addresses:
            db.execute(
                "INSERT INTO deleted_addresses (kind, pubkey, d, until) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, pubkey, d) DO UPDATE SET until = max(until, excluded.until)",
                (address.kind, address.pubkey, address.d, request.created_at),
            )
            seqs = db.execute(
                "SELECT seq FROM events "
                "WHERE kind = ? AND pubkey = ? AND d = ? AND created_at <= ?",
                (address.kind, address.pubkey, address.d, request.created_at),
            ).fetchall()
            self._delete_seqs(db, [seq for (seq,) in seqs])
        logger.debug(
            "deletion by %s: %d ids, %d addresses",
            request.author,
            len(request.event_ids),
            len(request.addresses),
        )

    # --- the referenced-ids index (S15.1) ------------------------------------------------------

    def add_references(self, referrer: str, targets: Iterable[str]) -> None:
        """Record (or refresh) each target; past ``max_references`` the oldest go (S15.1)."""
        rows = [(target, referrer) for target in sorted(set(targets))]
        if not rows:
            return
        with self._write() as db:
            # REPLACE gives a refreshed target a new, highest seq: it becomes the newest.
            db.executemany(
                "INSERT OR REPLACE INTO referenced (target, referrer) VALUES (?, ?)", rows
            )
            db.execute(
                "DELETE FROM referenced WHERE seq <= (SELECT max(seq) FROM referenced) - ?",
                (self.max_references,),
            )

    def referrer_of(self, targets: Iterable[str]) -> str | None:
        wanted = sorted(set(targets))
        if not wanted:
            return None
        marks = ",".join("?" * len(wanted))
        with self._lock:
            row = self._db.execute(
                f"SELECT referrer FROM referenced WHERE target IN ({marks}) LIMIT 1", wanted
            ).fetchone()
        return row[0] if row else None

    # --- peers (S17.1, S17.4, schema version 3) --------------------------------------------------

    def save_peer(self, row: PeerRow) -> None:
        with self._write() as db:
            known = db.execute("SELECT 1 FROM peers WHERE url = ?", (row.url,)).fetchone()
            if not known and db.execute("SELECT count(*) FROM peers").fetchone()[0] >= (
                MAX_PEER_ROWS
            ):
                return
            db.execute(UPSERT_PEER, peer_params(row))

    def load_peers(self) -> list[PeerRow]:
        with self._lock:
            return [peer_row(values) for values in self._db.execute(LOAD_PEERS).fetchall()]

    # --- reads --------------------------------------------------------------------------------

    def query(self, filters: Sequence[Filter], limit_cap: int = DEFAULT_LIMIT_CAP) -> list[Event]:
        """NIP-01 REQ semantics: the OR of ``filters``, each limited to min(limit, cap) newest.

        The union is ordered newest first, equal ``created_at`` by lowest id, without duplicates.
        """
        return [
            Event.from_trusted_json(json.loads(text))
            for text in self.query_json(filters, limit_cap)
        ]

    def query_json(
        self, filters: Sequence[Filter], limit_cap: int = DEFAULT_LIMIT_CAP
    ) -> list[str]:
        """Like :meth:`query` but the stored JSON texts, for relays that splice them into frames."""
        rows: list[tuple[str, int, str]] = []
        with self._lock:
            for flt in filters:
                if runnable(flt, limit_cap):
                    sql, params = filter_query(flt, effective_limit(flt, limit_cap))
                    rows.extend(self._db.execute(sql, params))
        return newest_first(rows)

    def records(self, flt: Filter, limit: int) -> list[tuple[int, str]]:
        """``(created_at, id)`` of the stored events matching ``flt`` (NIP-77, S17.3)."""
        wanted = record_limit(flt, limit)
        if wanted <= 0:
            return []
        sql, params = filter_query(flt, wanted, RECORD_COLUMNS)
        with self._lock:
            return [
                (created_at, event_id) for created_at, event_id in self._db.execute(sql, params)
            ]

    def get(self, event_id: str) -> Event | None:
        with self._lock:
            row = self._db.execute("SELECT json FROM events WHERE id = ?", (event_id,)).fetchone()
        return Event.from_trusted_json(json.loads(row[0])) if row else None

    def contains(self, event_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM events WHERE id = ?", (event_id,)).fetchone()
        return row is not None

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM events").fetchone()[0]

    def query_plan(self, flt: Filter, limit_cap: int = DEFAULT_LIMIT_CAP) -> list[str]:
        """EXPLAIN QUERY PLAN lines of one filter's SELECT (diagnostics and index tests)."""
        sql, params = filter_query(flt, min(flt.limit or limit_cap, limit_cap))
        with self._lock:
            return [row[3] for row in self._db.execute("EXPLAIN QUERY PLAN " + sql, params)]

    def close(self) -> None:
        """Close the connection; ``PRAGMA optimize`` first so the next start has good statistics."""
        with self._lock:
            try:
                self._db.execute("PRAGMA optimize")
            finally:
                self._db.close()

    def __enter__(self) -> SqliteEventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


#: The class's name before the engine interface existed; callers still import it from here
#: until they move to :class:`grasp.store.base.EventStore` (the interface) and
#: :func:`grasp.store.open_store` (the factory).
EventStore = SqliteEventStore
