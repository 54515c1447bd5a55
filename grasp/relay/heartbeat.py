"""The heartbeat that lets a restart tell how long the relay was down (S9.1, S1.4).

Every few seconds a greenlet writes ``now`` into this node's row of ``node_heartbeats``; a
graceful stop writes one last beat. At the next start ``EventStore.resume`` credits every held
deadline with the time since the last beat of *any* node (docs/durability.rst D3), so downtime
does not count against an event's 30 minutes — after SIGTERM to the second, after a crash
within one interval (the process died somewhere in the interval after its last beat; the
error is in the event's favour). One tiny upsert per interval, off the hot path.

The node id is ``<host name>:<port>``: several relay processes sharing one PostgreSQL database
(docs/scaling.rst) each keep their own row, and downtime means "no node was beating".
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

import gevent

from grasp.store.base import EventStore

logger = logging.getLogger(__name__)

__all__ = ["HEARTBEAT_SECS", "Heartbeat", "node_id"]

#: The bound on the downtime a crash can credit wrongly (in the event's favour).
HEARTBEAT_SECS = 5.0


def node_id(port: int) -> str:
    """This relay process's name in ``node_heartbeats``."""
    return f"{socket.gethostname()}:{port}"


class Heartbeat:
    def __init__(
        self,
        store: EventStore,
        node: str,
        interval: float = HEARTBEAT_SECS,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.node = node
        self.interval = interval
        self.wall = wall
        self._greenlet: gevent.Greenlet | None = None
        self._failing = False

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        """Stop beating; the last beat says the relay was up until now (a graceful stop)."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=5)
            self._greenlet = None
        self.beat()

    def beat(self) -> None:
        try:
            self.store.heartbeat(self.node, self.wall())
        except Exception as exc:  # the next beat tries again; say so once
            if not self._failing:
                logger.warning("heartbeat of %s failed: %r", self.node, exc)
            self._failing = True
            return
        if self._failing:
            logger.info("heartbeat of %s written again", self.node)
        self._failing = False

    def _run(self) -> None:
        while True:
            gevent.sleep(self.interval)
            self.beat()
