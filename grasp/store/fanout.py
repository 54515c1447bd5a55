"""Live fan-out across the nodes of a cluster: PostgreSQL ``LISTEN/NOTIFY`` carrying event ids
(S19.2: an event stored by any node reaches live subscribers on every node within 2 s).

Why ids and not events: a NOTIFY payload is at most 8000 bytes, an event may be 512 KiB; and the
event is already committed in the shared database, so every node can read it from there. One
channel, ``grasp_events``; a payload is ``<node>|<id>,<id>,…`` with as many ids as fit (about
110), so a burst of releases costs a few notifications, not one per event.

Each process runs two greenlets on their own connections (outside the store's pool, so a busy
pool never delays a notification): the **sender** drains the ids published locally and sends
them in batches; the **listener** waits on ``LISTEN``, reads the ids other nodes sent from the
store and hands them to the local hub. A node skips payloads that carry its own name: its own
subscribers got the event from the local hub already, so nobody gets it twice.

Either connection that breaks is opened again (backoff 0.1 s doubling to 5 s) and the fault is
logged once per outage. Ids published while the server was unreachable are sent when it is
back; notifications *to* a node whose listener was reconnecting are lost for its live
subscribers (a REQ still finds the events: they are in the database). Ephemeral events
(kinds 20000-29999) are never stored, so they stay on the node that received them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

import gevent
import gevent.event
import gevent.queue
import psycopg

from grasp.nostr import kinds
from grasp.nostr.event import Event
from grasp.nostr.filters import Filter
from grasp.store.base import EventStore, StoreError

logger = logging.getLogger(__name__)

__all__ = ["CHANNEL", "ClusterFanout", "parse_payload", "payloads"]

CHANNEL = "grasp_events"
#: PostgreSQL's payload limit is 8000 bytes; stay below it.
MAX_PAYLOAD = 7900
RECONNECT_MIN, RECONNECT_MAX = 0.1, 5.0


def payloads(node: str, ids: Iterable[str]) -> Iterator[str]:
    """``<node>|id,id,…`` texts of at most :data:`MAX_PAYLOAD` bytes covering ``ids``."""
    head = f"{node}|"
    batch: list[str] = []
    size = len(head.encode())
    for event_id in ids:
        if batch and size + 1 + len(event_id) > MAX_PAYLOAD:
            yield head + ",".join(batch)
            batch, size = [], len(head.encode())
        batch.append(event_id)
        size += len(event_id) + 1
    if batch:
        yield head + ",".join(batch)


def parse_payload(payload: str) -> tuple[str, list[str]]:
    """The sending node and the ids of one payload (a malformed one gives no ids)."""
    node, sep, rest = payload.rpartition("|")
    if not sep:
        return "", []
    return node, [i for i in rest.split(",") if len(i) == 64]


class ClusterFanout:
    """``publish`` is the relay's notify callback in cluster mode: the local hub first, then
    the other nodes. ``start()`` runs the sender and the listener; ``stop()`` ends both."""

    def __init__(
        self, url: str, node: str, store: EventStore, deliver: Callable[[Event], int]
    ) -> None:
        self._url = url
        self.node = node
        self._store = store
        self._deliver = deliver
        self._outgoing: gevent.queue.Queue[str] = gevent.queue.Queue()
        self._greenlets: list[gevent.Greenlet] = []
        #: Ids taken from the queue but not yet sent: kept across a reconnect.
        self._unsent: list[str] = []
        #: How many events other nodes' notifications delivered here (tests, /metrics later).
        self.received = 0
        #: How many times the listener has (re)started listening; set while it listens.
        self.listens = 0
        self.listening = gevent.event.Event()

    def publish(self, event: Event) -> int:
        """Deliver ``event`` to this node's subscribers and queue its id for the others."""
        delivered = self._deliver(event)
        if event.storage_class is not kinds.StorageClass.EPHEMERAL:
            self._outgoing.put(event.id)
        return delivered

    def start(self) -> None:
        self._greenlets = [
            gevent.spawn(self._run, "sender", self._send_loop),
            gevent.spawn(self._run, "listener", self._listen_loop),
        ]

    def stop(self, timeout: float = 2.0) -> None:
        """End both greenlets; ids still queued are sent first (bounded by ``timeout``)."""
        deadline = gevent.Timeout(timeout, False)
        with deadline:
            while (not self._outgoing.empty() or self._unsent) and self._greenlets:
                gevent.sleep(0.01)  # the sender drains the queue between two polls
        gevent.killall(self._greenlets, block=True, timeout=timeout)
        self._greenlets = []

    # --- the greenlets ------------------------------------------------------------------------

    def _run(self, name: str, loop: Callable[[psycopg.Connection], None]) -> None:
        """Run ``loop`` on a fresh connection; reopen it after a failure, logging once."""
        delay, failing = RECONNECT_MIN, False
        while True:
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    if failing:
                        logger.warning("cluster fan-out %s reconnected", name)
                    failing, delay = False, RECONNECT_MIN
                    loop(conn)
            except psycopg.Error as exc:
                if not failing:
                    logger.warning("cluster fan-out %s lost the database: %s", name, exc)
                failing = True
                self.listening.clear()
            gevent.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    def _send_loop(self, conn: psycopg.Connection) -> None:
        while True:
            if not self._unsent:
                self._unsent.append(self._outgoing.get())
            while not self._outgoing.empty():
                self._unsent.append(self._outgoing.get_nowait())
            for payload in payloads(self.node, self._unsent):
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            self._unsent = []  # only once every payload went out: a failure resends them all

    def _listen_loop(self, conn: psycopg.Connection) -> None:
        conn.execute(f"LISTEN {CHANNEL}")
        self.listens += 1
        self.listening.set()
        for note in conn.notifies():
            node, ids = parse_payload(note.payload)
            if node != self.node and ids:
                self._deliver_stored(ids)

    def _deliver_stored(self, ids: list[str]) -> None:
        try:
            events = self._store.query([Filter(ids=frozenset(ids))], limit_cap=len(ids))
        except StoreError as exc:
            logger.warning("cluster fan-out could not read %d events: %s", len(ids), exc)
            return
        for event in events:  # an id replaced or deleted meanwhile is simply not found
            self.received += 1
            self._deliver(event)
