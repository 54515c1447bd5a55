"""All peers of the relay (S17.1, S17.2, S17.4): discovery, persistence, the write path.

:class:`PeerNetwork` is both the relay's write policy (it wraps the real one, so every accepted
event passes here whatever its source: a client, a sync source, a peer) and the owner of the
peer greenlets. On every accepted event it

* makes the relays of an accepted announcement peers (S17.1; stored or held — an announcement
  held for its git data is exactly when a peer is needed), unless discovery is off;
* notes that what we host changed (an announcement, a thread root), so peers re-subscribe;
* offers again the events that waited for it as a parent (:mod:`.waiting`), on a greenlet of
  their own so a client's ``OK`` never waits for them.

And on a *synced* event refused only for a missing parent, it remembers the event.

Peers persist (:meth:`grasp.store.base.EventStore.save_peer`): discovered ones and their health
(failures, next attempt, naughty-list end, last reconciliation) are written when they change,
and loaded at start. ``--sync-source`` URLs keep their own S10.7 connection
(:mod:`grasp.relay.sync_sources`) and are not peers again here (one connection per relay).
At most :data:`MAX_PEERS` peers run; a new one takes the place of a discovered peer on the
naughty list, else it is logged and dropped (bounded, and junk cannot keep real peers out).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import gevent
import gevent.event

from grasp.admission.intake import EventSource, WritePolicy
from grasp.git import FetchPolicy
from grasp.nostr import kinds
from grasp.nostr.event import Event
from grasp.nostr.filters import Filter
from grasp.nostr.nip34 import Announcement, Nip34Error
from grasp.nostr.results import Prefix, Result
from grasp.relay.peers.discovery import PeerRefused, normalise_peer_url, peer_url_refusal
from grasp.relay.peers.filters import ROOT_KINDS, Hosted
from grasp.relay.peers.health import NaughtyList, PeerHealth
from grasp.relay.peers.peer import Peer, PeerStatus
from grasp.relay.peers.session import SessionLimits
from grasp.relay.peers.waiting import WaitingForParents, missing_parents
from grasp.relay.sync_sources.history import offer_in_order
from grasp.relay.sync_sources.settings import SyncSourceSettings
from grasp.store.base import EventStore
from grasp.store.peers import PeerRow

logger = logging.getLogger(__name__)

__all__ = ["MAX_PEERS", "PeerNetwork", "PeerSettings"]

MAX_PEERS = 100
#: Hosted repositories and roots read per refresh (a forge-sized relay; more are not synced).
MAX_HOSTED = 10_000


@dataclass(frozen=True)
class PeerSettings:
    """The relay's peer options (``Config``) in one value."""

    #: This relay's authorities: ``--domain`` first, then the listening address(es).
    domains: tuple[str, ...]
    bootstrap: tuple[str, ...] = ()
    discover: bool = True
    reconcile_interval: float = 86400.0
    excluded: tuple[str, ...] = ()  # the --sync-source URLs: synced by their own connection


class PeerNetwork:
    """The write-policy wrapper and the set of peers (see the module docstring)."""

    def __init__(
        self,
        inner: WritePolicy,
        store: EventStore,
        settings: PeerSettings,
        fetch_policy: FetchPolicy,
        wire: SyncSourceSettings,
        *,
        limits: SessionLimits | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = gevent.sleep,
    ) -> None:
        self.inner = inner
        self.store = store
        self.settings = settings
        self.fetch_policy = fetch_policy
        self.wire = wire
        self.limits = limits or SessionLimits()
        self.reconcile_interval = settings.reconcile_interval
        self.clock = clock
        self.sleep = sleep
        self.naughty = NaughtyList()
        self.waiting = WaitingForParents()
        self.peers: dict[str, Peer] = {}
        self._excluded = {self._normalised(u) for u in settings.excluded} - {None}
        self._hosted: tuple[int, Hosted] | None = None
        self._version = 0
        self._changed = gevent.event.Event()
        self._feeding: set[str] = set()
        self._started = False

    # --- the write policy -----------------------------------------------------------------

    def __call__(self, event: Event, source: EventSource) -> Result:
        result = self.inner(event, source)
        if result.accepted and result.prefix is not Prefix.DUPLICATE:  # a known one changes nothing
            self._accepted(event)
        elif source is EventSource.SYNC:
            parents = missing_parents(event, result)
            if parents:
                self.waiting.park(event, parents, self.clock())
        return result

    def _accepted(self, event: Event) -> None:
        if event.kind == kinds.REPO_ANNOUNCEMENT or event.kind in ROOT_KINDS:
            self._hosted_changed()
        if event.kind == kinds.REPO_ANNOUNCEMENT and self.settings.discover:
            self._discover_from(event)
        released = self.waiting.released_by(event, self.clock())
        if released:
            logger.info("%d events waited for %s; offering them again", len(released), event.id)
            gevent.spawn(self._retry, released)

    def _retry(self, events: list[Event]) -> None:
        for waiting, result in offer_in_order(events, lambda e: self(e, EventSource.SYNC)):
            logger.debug("retried %s after its parent: %r", waiting.id, result.message)

    def released(self, event: Event) -> None:
        """An event left purgatory into the store (the Releaser's callback): for peers it is
        accepted now — what waited for it is retried, a released announcement or root widens
        what peers are asked for."""
        try:
            self._accepted(event)
        except Exception:  # the release happened; peers only miss a hint
            logger.exception("peers: could not note the release of %s", event.id)

    def offer(self, peer: Peer, events: list[Event]) -> Iterator[tuple[Event, Result]]:
        """Offer a batch from ``peer`` in dependency order (S17.2), marked synced."""
        yield from offer_in_order(events, lambda e: self._offer_one(peer, e))

    def _offer_one(self, peer: Peer, event: Event) -> Result:
        self._feeding.add(peer.url)
        try:
            return self(event, EventSource.SYNC)
        except Exception:
            logger.exception("peer %s: write policy failed on event %s", peer.url, event.id)
            return Result.reject(Prefix.ERROR, "write policy failed")
        finally:
            self._feeding.discard(peer.url)

    def feeding(self, peer: Peer) -> bool:
        return peer.url in self._feeding

    # --- discovery ------------------------------------------------------------------------

    def _discover_from(self, event: Event) -> None:
        try:
            relays = Announcement.from_event(event).relays
        except Nip34Error:
            return
        self.discover(relays, "announcement")

    def discover(self, urls: Iterable[str], origin: str) -> list[str]:
        """Make peers of ``urls`` (S17.1); returns the ones that are new."""
        added = []
        for raw in urls:
            url = self._normalised(raw)
            if url is None or url in self.peers or url in self._excluded:
                continue
            refusal = peer_url_refusal(url, self.settings.domains, self.fetch_policy)
            if refusal:
                logger.debug("relay %s is not a peer: %s", url, refusal)
                continue
            if len(self.peers) >= MAX_PEERS and not self._evict_naughty():
                logger.warning("relay %s is not a peer: already %d peers", url, MAX_PEERS)
                continue
            self._add(PeerRow(url, origin, self.clock()))
            added.append(url)
        return added

    def _evict_naughty(self) -> bool:
        """Make room by dropping a discovered peer on the naughty list (announcements naming
        made-up relays must not keep real ones out); False when none is."""
        now = self.clock()
        for url, peer in self.peers.items():
            if peer.origin == "announcement" and self.naughty.until(url, now) is not None:
                peer.stop(timeout=1.0)
                del self.peers[url]
                logger.info(
                    "peer %s dropped to make room (naughty: %s)", url, peer.health.last_error
                )
                return True
        return False

    def _add(self, row: PeerRow) -> Peer:
        health = PeerHealth(
            row.url, self.naughty, failures=row.failures, next_attempt_at=row.next_attempt_at
        )
        health.last_error = row.last_error
        if row.naughty_until is not None:
            self.naughty.add(row.url, self.clock(), until=row.naughty_until)
        peer = self.peers[row.url] = Peer(row, self, health, clock=self.clock, sleep=self.sleep)
        logger.info("peer %s added (%s)", row.url, row.origin)
        self.persist(peer)
        if self._started:
            peer.start()
        return peer

    @staticmethod
    def _normalised(url: str) -> str | None:
        try:
            return normalise_peer_url(url)
        except PeerRefused as exc:
            logger.debug("relay URL %r is not a peer: %s", url[:100], exc)
            return None

    # --- what we host ---------------------------------------------------------------------

    def hosted(self) -> tuple[int, Hosted]:
        """(version, the repositories we host and their thread roots), cached until a change."""
        if self._hosted is None or self._hosted[0] != self._version:
            self._hosted = (self._version, self._read_hosted())
        return self._hosted

    def _read_hosted(self) -> Hosted:
        announcements = self.store.query(
            [Filter(kinds=frozenset({kinds.REPO_ANNOUNCEMENT}))], limit_cap=MAX_HOSTED
        )
        held = getattr(self.inner, "purgatory", None)
        repos = {(e.pubkey, _d(e)) for e in announcements}
        if held is not None:
            repos |= {(a.owner, a.identifier) for a in held.held_announcements()}
        coordinates = frozenset(f"{kinds.REPO_ANNOUNCEMENT}:{pk}:{d}" for pk, d in repos)
        roots = set()
        if coordinates:
            root_filter = Filter(kinds=frozenset(ROOT_KINDS), tags={"a": coordinates})
            roots = {e.id for e in self.store.query([root_filter], limit_cap=MAX_HOSTED)}
        return Hosted(frozenset(repos), frozenset(roots))

    def _hosted_changed(self) -> None:
        self._version += 1
        self._changed.set()
        self._changed = gevent.event.Event()

    def wait_for_hosted(self, timeout: float) -> None:
        self._changed.wait(timeout)

    def local_items(self, flt: Filter) -> list[tuple[int, str]]:
        """Our records of a filter, for a NIP-77 reconciliation (bounded)."""
        events = self.store.query([flt], limit_cap=self.limits.max_records)
        return [(e.created_at, e.id) for e in events]

    # --- lifecycle, persistence, status ---------------------------------------------------

    def load(self) -> None:
        """Peers of earlier runs, bootstrap relays, and the relays of stored announcements."""
        for row in self.store.load_peers():
            if row.url not in self.peers and row.url not in self._excluded:
                if len(self.peers) < MAX_PEERS and not peer_url_refusal(
                    row.url, self.settings.domains, self.fetch_policy
                ):
                    self._add(row)
        self.discover(self.settings.bootstrap, "bootstrap")
        if self.settings.discover:
            stored = self.store.query(
                [Filter(kinds=frozenset({kinds.REPO_ANNOUNCEMENT}))], limit_cap=MAX_HOSTED
            )
            for event in stored:
                self._discover_from(event)

    def start(self) -> None:
        self._started = True
        for peer in list(self.peers.values()):
            peer.start()

    def stop(self, timeout: float = 5.0) -> bool:
        self._started = False
        stops = [gevent.spawn(peer.stop, timeout) for peer in self.peers.values()]
        gevent.joinall(stops)
        for peer in self.peers.values():
            self.persist(peer)
        return all(stop.value for stop in stops)

    def persist(self, peer: Peer) -> None:
        try:
            self.store.save_peer(peer.row())
        except Exception:  # health is kept in memory; the row is written at the next change
            logger.exception("could not store peer %s", peer.url)

    def status(self) -> list[PeerStatus]:
        return [peer.status() for peer in self.peers.values()]

    def __len__(self) -> int:
        return len(self.peers)


def _d(event: Event) -> str:
    return next((t[1] for t in event.tags if len(t) > 1 and t[0] == "d"), "")
