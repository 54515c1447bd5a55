"""Cluster coordination behind the port (S19.2): identifier leases and the shared throttle ledger.

Several relay processes ("nodes") sharing one database must agree on two things the actors of
one process used to decide alone: which node syncs an identifier (a *lease*), and how many
requests a remote host sees (the throttle *ledger*, S6 summed over nodes). The actors reach
both only through :class:`~actors.context.SyncContext` methods (``take_lease``,
``release_lease``, ``ledger_start``, ``ledger_done``), so they stay thin shells over pure
policy and a trace of them still replays.

This module holds the ledger's decision rule (:func:`ledger_decision`; the timing every
implementation shares is in :mod:`messages.port`, where ``grasp`` reads it too), plus
:class:`MemoryCluster`, the in-memory stand-in for the database that fakes and tests use
(several :class:`MemoryCoordination` nodes over one cluster behave like several relays over
one PostgreSQL). The PostgreSQL implementation is
``grasp.store.cluster``; a single process without a shared database grants everything.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from messages.port import LEASE_TTL, LEDGER_POLL, RENEW_INTERVAL, LedgerAnswer

logger = logging.getLogger(__name__)

__all__ = [
    "LEASE_TTL",
    "LEDGER_POLL",
    "RENEW_INTERVAL",
    "MemoryCluster",
    "MemoryCoordination",
    "ledger_decision",
]


def ledger_decision(
    in_flight: int,
    used: int,
    oldest_end: float | None,
    now: float,
    max_concurrent: int,
    max_per_window: int,
    window: float,
) -> LedgerAnswer:
    """The S6.1 check over the whole cluster's slots of one domain (pruned up to ``now``).

    ``used`` counts requests in flight plus those that ended less than ``window`` ago (the
    counting rule of :class:`~actors.throttle.DomainThrottleState`); ``oldest_end`` is the end
    of the oldest finished one. Refused, the answer says when to ask again.
    """
    if in_flight < max_concurrent and used < max_per_window:
        return LedgerAnswer(True)
    if in_flight < max_concurrent and oldest_end is not None:
        return LedgerAnswer(False, max(round(oldest_end + window - now, 6), 0.0))
    return LedgerAnswer(False, LEDGER_POLL)


@dataclass(slots=True)
class _Slot:
    node: str
    ended: float | None
    expires: float


class MemoryCluster:
    """The leases and the ledger one database would hold, shared by in-memory nodes."""

    def __init__(self, clock: Callable[[], float], ttl: float = LEASE_TTL) -> None:
        self.clock, self.ttl = clock, ttl
        self.leases: dict[str, tuple[str, float]] = {}  # identifier -> (node, expires)
        self.slots: dict[str, list[_Slot]] = {}
        self.granted: Counter[str] = Counter()  # domain -> slots ever granted

    def node(self, name: str) -> MemoryCoordination:
        return MemoryCoordination(self, name)

    def prune(self, domain: str, window: float, now: float) -> list[_Slot]:
        """Dead nodes' in-flight slots end at their expiry; slots a window past their end go."""
        slots = self.slots.setdefault(domain, [])
        for slot in slots:
            if slot.ended is None and slot.expires <= now:
                slot.ended = slot.expires
        slots[:] = [s for s in slots if s.ended is None or now - s.ended < window]
        return slots


class MemoryCoordination:
    """One node's view of a :class:`MemoryCluster`; the same promises as the PostgreSQL one."""

    def __init__(self, cluster: MemoryCluster, node: str) -> None:
        self.cluster, self.node = cluster, node
        self._held: Counter[str] = Counter()

    def take_lease(self, identifier: str) -> bool:
        cluster, now = self.cluster, self.cluster.clock()
        if self._held[identifier] == 0:
            holder = cluster.leases.get(identifier)
            if holder is not None and holder[0] != self.node and holder[1] > now:
                return False
            cluster.leases[identifier] = (self.node, now + cluster.ttl)
        self._held[identifier] += 1
        return True

    def release_lease(self, identifier: str) -> None:
        if self._held[identifier] <= 0:
            return
        self._held[identifier] -= 1
        if self._held[identifier] == 0:
            del self._held[identifier]
            if self.cluster.leases.get(identifier, ("",))[0] == self.node:
                del self.cluster.leases[identifier]

    def ledger_start(
        self, domain: str, max_concurrent: int, max_per_window: int, window: float
    ) -> LedgerAnswer:
        cluster, now = self.cluster, self.cluster.clock()
        slots = cluster.prune(domain, window, now)
        in_flight = sum(1 for s in slots if s.ended is None)
        ends = [s.ended for s in slots if s.ended is not None]
        answer = ledger_decision(
            in_flight, len(slots), min(ends, default=None), now,
            max_concurrent, max_per_window, window,
        )  # fmt: skip
        if answer.granted:
            slots.append(_Slot(self.node, None, now + cluster.ttl))
            cluster.granted[domain] += 1
        return answer

    def ledger_done(self, domain: str, contacted: bool) -> None:
        slots = self.cluster.slots.get(domain, [])
        for slot in slots:
            if slot.node == self.node and slot.ended is None:
                if contacted:
                    slot.ended = self.cluster.clock()
                else:
                    slots.remove(slot)
                return

    def renew(self) -> None:
        """The heartbeat: this node's leases and in-flight slots live another TTL."""
        cluster = self.cluster
        expires = cluster.clock() + cluster.ttl
        for identifier in self._held:
            cluster.leases[identifier] = (self.node, expires)
        for slots in cluster.slots.values():
            for slot in slots:
                if slot.node == self.node and slot.ended is None:
                    slot.expires = expires
