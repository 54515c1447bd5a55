"""Cluster coordination in the database (S19.2): identifier leases and the throttle ledger.

The port methods of :class:`~actors.context.SyncContext` that let several relay processes
("nodes") share one PostgreSQL database without doing each other's work twice or overrunning
a remote host's limits (``docs/scaling.rst``: leases, ledger, failover):

* **Leases** are rows (``sync_leases``: identifier, node, expires_at), not advisory locks. A
  session advisory lock belongs to one connection, which the pool hands to other callers and
  may replace; it is freed only when the server notices its connection died, which after a
  network partition takes as long as TCP keepalive. A row with an expiry is independent of
  connections and gives a bounded failover: a node renews its leases every
  :data:`~messages.port.RENEW_INTERVAL` seconds; stopped renewing (SIGKILL), they are free
  after :data:`~messages.port.LEASE_TTL` seconds.
* **The ledger** (``throttle_slots``) has one row per request a node started on a domain:
  in flight while ``ended_at`` is NULL, then in the window until ``window`` seconds after it
  ended — :class:`~actors.throttle.DomainThrottleState`'s counting rule, summed over nodes.
  ``grasp_ledger_start()`` (migration 6) is the check-and-start: one statement, one
  transaction, under a transaction advisory lock per domain, so two nodes never both take the
  last slot. A dead node's in-flight rows end at their expiry and then count one more window.

Every time is the database's clock (``clock_timestamp()``): nodes' clocks never meet.
:class:`LocalCoordination` is the single-process answer (SQLite): everything granted, the
actors' local state is the whole truth.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import gevent
import gevent.lock

from messages.port import LEASE_TTL, LEDGER_POLL, RENEW_INTERVAL, LedgerAnswer

if TYPE_CHECKING:  # a SQLite relay never loads the driver
    from .postgres import PostgresEventStore

logger = logging.getLogger(__name__)

__all__ = ["NODE_GONE_SECS", "LocalCoordination", "PostgresCoordination", "make_node_id"]

#: A node whose heartbeat (``grasp.relay.heartbeat``, every 5 s, wall clock) is older than this
#: has stopped; the survivors adopt the held events it may have left (3 missed beats).
NODE_GONE_SECS = 15.0


def make_node_id() -> str:
    """A per-process id, stable for the process's life: host, pid and a random part (a pid
    is reused after a restart; the random part keeps a restarted node from being its ghost)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class LocalCoordination:
    """One process, no shared database: every lease and every ledger slot is granted."""

    def __init__(self, node: str | None = None) -> None:
        self.node = node or make_node_id()
        self.on_nodes_gone: Callable[[list[str]], object] | None = None  # never: no others

    def take_lease(self, identifier: str) -> bool:
        return True

    def release_lease(self, identifier: str) -> None:
        pass

    def ledger_start(
        self, domain: str, max_concurrent: int, max_per_window: int, window: float
    ) -> LedgerAnswer:
        return LedgerAnswer(True)

    def ledger_done(self, domain: str, contacted: bool) -> None:
        pass

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass


class PostgresCoordination:
    """Leases and ledger of one node in the event store's PostgreSQL database.

    Leases are re-entrant on one node (a main-path sync and a throttle-path fetch of the same
    identifier may overlap here as in a single process): a local count per identifier, the row
    is taken at the first and deleted at the last. :meth:`start` runs the renewal greenlet;
    :meth:`close` gives back everything the node holds.
    """

    def __init__(
        self,
        store: PostgresEventStore,
        node: str | None = None,
        *,
        ttl: float = LEASE_TTL,
        renew_interval: float = RENEW_INTERVAL,
        poll: float = LEDGER_POLL,
    ) -> None:
        self.store, self.node = store, node or make_node_id()
        self.ttl, self.renew_interval, self.poll = ttl, renew_interval, poll
        self._held: Counter[str] = Counter()
        self._lock = gevent.lock.RLock()  # one greenlet at a time decides on _held
        self._greenlet: gevent.Greenlet | None = None
        #: Told the heartbeat ids of nodes that stopped beating since the last look (S19.2).
        self.on_nodes_gone: Callable[[list[str]], object] | None = None
        self._gone: set[str] | None = None  # None until the first look (the baseline)
        self._owed: list[tuple[str, bool]] = []  # ledger_done calls the database missed

    # -- leases -------------------------------------------------------------------------

    def take_lease(self, identifier: str) -> bool:
        with self._lock:
            if self._held[identifier] == 0 and not self._insert_lease(identifier):
                return False
            self._held[identifier] += 1
            return True

    def _insert_lease(self, identifier: str) -> bool:
        with self.store.connection() as conn:
            row = conn.execute(
                """
                INSERT INTO sync_leases AS l (identifier, node, expires_at)
                VALUES (%s, %s, clock_timestamp() + make_interval(secs => %s))
                ON CONFLICT (identifier) DO UPDATE
                    SET node = EXCLUDED.node, expires_at = EXCLUDED.expires_at
                    WHERE l.expires_at < clock_timestamp() OR l.node = EXCLUDED.node
                RETURNING node
                """,
                (identifier, self.node, self.ttl),
            ).fetchone()
        return row is not None

    def release_lease(self, identifier: str) -> None:
        with self._lock:
            if self._held[identifier] <= 0:
                return
            self._held[identifier] -= 1
            if self._held[identifier] > 0:
                return
            del self._held[identifier]
            with self.store.connection() as conn:
                conn.execute(
                    "DELETE FROM sync_leases WHERE identifier = %s AND node = %s",
                    (identifier, self.node),
                )

    # -- ledger -------------------------------------------------------------------------

    def ledger_start(
        self, domain: str, max_concurrent: int, max_per_window: int, window: float
    ) -> LedgerAnswer:
        with self.store.connection() as conn:
            row = conn.execute(
                "SELECT * FROM grasp_ledger_start(%s, %s, %s, %s, %s, %s, %s)",
                (domain, self.node, max_concurrent, max_per_window, window, self.ttl, self.poll),
            ).fetchone()
        assert row is not None
        return LedgerAnswer(bool(row[0]), round(float(row[1]), 6))

    def ledger_done(self, domain: str, contacted: bool) -> None:
        """End (or, never contacted, delete) this node's oldest in-flight slot of ``domain``:
        a node's slots of one domain are interchangeable. Failed, it is owed: the renewal
        would keep the slot in flight forever, so the next renewal gives it back first."""
        try:
            self._end_slot(domain, contacted)
        except Exception:
            self._owed.append((domain, contacted))
            raise

    def _end_slot(self, domain: str, contacted: bool) -> None:
        action = (
            "UPDATE throttle_slots SET ended_at = clock_timestamp()"
            if contacted
            else "DELETE FROM throttle_slots"
        )
        with self.store.connection() as conn:
            conn.execute(
                f"""{action} WHERE id = (
                    SELECT id FROM throttle_slots
                    WHERE domain = %s AND node = %s AND ended_at IS NULL
                    ORDER BY id LIMIT 1)""",
                (domain, self.node),
            )

    # -- renewal --------------------------------------------------------------------------

    def renew(self) -> None:
        """One heartbeat: this node's leases and in-flight slots live another TTL; a lease
        found taken by another node (renewal came too late) is logged, once, and forgotten."""
        owed, self._owed = self._owed, []
        for index, (domain, contacted) in enumerate(owed):
            try:
                self._end_slot(domain, contacted)
            except Exception:
                self._owed.extend(owed[index:])
                raise
        with self._lock:
            held = list(self._held)
        with self.store.connection() as conn, conn.transaction():
            rows = conn.execute(
                """
                UPDATE sync_leases SET expires_at = clock_timestamp() + make_interval(secs => %s)
                WHERE node = %s AND identifier = ANY(%s) RETURNING identifier
                """,
                (self.ttl, self.node, held),
            ).fetchall()
            conn.execute(
                """
                UPDATE throttle_slots SET expires_at = clock_timestamp() + make_interval(secs => %s)
                WHERE node = %s AND ended_at IS NULL
                """,
                (self.ttl, self.node),
            )
        lost = set(held) - {row[0] for row in rows}
        with self._lock:
            for identifier in lost & set(self._held):
                logger.warning("lease of %s lost by %s (renewal too late)", identifier, self.node)
                del self._held[identifier]

    def newly_gone(self, now: float | None = None) -> list[str]:
        """Heartbeat ids of nodes that stopped beating since the previous call (the first
        call only takes the baseline: a start already loads and queues what is held)."""
        cutoff = (time.time() if now is None else now) - NODE_GONE_SECS
        with self.store.connection() as conn:
            rows = conn.execute(
                "SELECT node FROM node_heartbeats WHERE beat_at < %s", (cutoff,)
            ).fetchall()
        gone = {row[0] for row in rows}
        new = [] if self._gone is None else sorted(gone - self._gone)
        self._gone = gone
        return new

    def _watch(self) -> None:
        gone = self.newly_gone()
        if gone and self.on_nodes_gone is not None:
            logger.info("nodes stopped beating: %s; adopting their held events", ", ".join(gone))
            self.on_nodes_gone(gone)

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        failing = False
        while True:
            gevent.sleep(self.renew_interval)
            try:
                self.renew()
                self._watch()
            except Exception as exc:  # the next beat tries again; say so once
                if not failing:
                    logger.warning("renewing the leases of %s failed: %r", self.node, exc)
                failing = True
                continue
            if failing:
                logger.info("leases of %s renewed again", self.node)
            failing = False

    def close(self) -> None:
        """Stop renewing and give back what this node holds: its leases go, its in-flight
        slots end now (they count in the window as any ended request)."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=5)
            self._greenlet = None
        with self._lock:
            self._held.clear()
        try:
            with self.store.connection() as conn, conn.transaction():
                conn.execute("DELETE FROM sync_leases WHERE node = %s", (self.node,))
                conn.execute(
                    "UPDATE throttle_slots SET ended_at = clock_timestamp() "
                    "WHERE node = %s AND ended_at IS NULL",
                    (self.node,),
                )
        except Exception as exc:  # they expire on their own
            logger.warning("giving back the leases of %s failed: %r", self.node, exc)
