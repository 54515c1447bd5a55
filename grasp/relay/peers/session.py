"""One connection's work with a peer (S17.2, S17.3): history in stages, then live.

History is copied stage by stage (:mod:`.filters`: announcements, then states and what tags a
hosted repository, then replies), each stage fed to the write policy in dependency order before
the next is asked for — stage 3's roots are read from our store after stage 2 was fed.

Per filter the history comes by NIP-77 when the peer speaks it: a ``NEG-OPEN`` over our own
records of that filter tells which ids the peer has and we lack, and only those are asked for,
by ``ids`` in batches of :data:`IDS_BATCH`. A peer that answers ``NEG-ERR``, ``NOTICE`` (a relay
without NIP-77 answers an unknown verb so), ``CLOSED`` or nothing within ``neg_timeout`` is
asked with REQ/EOSE paging by ``until`` instead, for the rest of the connection. Paging ends at
the first page that brings nothing new (``until`` is inclusive, so a page's oldest second comes
again) or at ``max_pages``.

The live subscription (every stage's filters, ``limit: 0``) is opened first, so nothing
published during the walk is missed; its events are buffered until the history is fed (bounded:
past ``max_buffered`` they are fed at once). When what we host changes, or the periodic full
reconciliation is due, the live REQ is sent again under the same id (NIP-01 replaces it) and the
history walked again: for what was added only (new repositories, new thread roots) after a
change, for everything on the period — cheap with NIP-77, which is why it is preferred.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grasp.nostr.event import Event, InvalidEvent
from grasp.nostr.filters import Filter, InvalidFilter
from grasp.nostr.nip77 import NegentropyInitiator, NegentropyRefused, Nip77Error, ReconcileResult
from grasp.relay.peers.filters import STAGES, Hosted, live_filters, stage_filters, with_window
from grasp.relay.peers.link import PeerLink
from grasp.relay.sync_sources.history import approximate_size, dependency_key
from grasp.relay.sync_sources.wire import RelayMessage, SourceGone

logger = logging.getLogger(__name__)

__all__ = ["IDS_BATCH", "LIVE_SUB", "PeerSession", "SessionHooks", "SessionLimits"]

LIVE_SUB = "grasp-peer-live"
IDS_BATCH = 100
#: Filters per history REQ: relays limit filters per subscription (strfry, nostr-rs-relay), so
#: a stage with many batches is paged a few filters at a time.
PAGE_FILTERS = 10
#: A reconciliation that names more missing ids than this asks for these only; the next one
#: (the connection's next history walk) gets the rest. Bounds memory per peer.
MAX_NEED_IDS = 50_000


@dataclass(frozen=True)
class SessionLimits:
    """The numbers of one connection (see the module docstring)."""

    history_timeout: float = 60.0
    neg_timeout: float = 10.0
    max_pages: int = 10_000
    max_buffered: int = 20_000
    max_buffered_bytes: int = 64 * 1024 * 1024
    max_records: int = 100_000
    frame_size_limit: int = 60_000


@dataclass(frozen=True)
class SessionHooks:
    """What a session needs from the relay, as callables (the peer greenlet provides them).

    ``hosted()`` → (version, :class:`Hosted`); ``local_items(filter)`` → our ``(created_at, id)``
    records of a filter; ``feed(events)`` offers events (already in dependency order) to the
    write policy; ``reconcile_due()`` says a periodic full reconciliation is due;
    ``caught_up(newest, used_nip77, full)`` is called after each complete history walk (``full``:
    of everything hosted, not only what was added);
    ``live(event)`` after a live event was fed; ``stopping()`` ends the session.
    """

    hosted: Callable[[], tuple[int, Hosted]]
    local_items: Callable[[Filter], list[tuple[int, str]]]
    feed: Callable[[list[Event]], None]
    reconcile_due: Callable[[], bool]
    caught_up: Callable[[int | None, bool, bool], None]
    live: Callable[[Event], None]
    stopping: Callable[[], bool]


class _Buffer:
    """Events of one history walk (or of live while walking), bounded, fed sorted."""

    def __init__(self, feed: Callable[[list[Event]], None], limits: SessionLimits) -> None:
        self.feed = feed
        self.limits = limits
        self.events: dict[str, Event] = {}
        self.bytes = 0

    def add(self, event: Event) -> bool:
        if event.id in self.events:
            return False
        self.events[event.id] = event
        self.bytes += approximate_size(event)
        if (
            len(self.events) >= self.limits.max_buffered
            or self.bytes >= self.limits.max_buffered_bytes
        ):
            self.flush()
        return True

    def flush(self) -> None:
        batch = sorted(self.events.values(), key=dependency_key)
        self.events.clear()
        self.bytes = 0
        if batch:
            self.feed(batch)


class PeerSession:
    """History then live over one :class:`PeerLink`; returns only when stopping."""

    def __init__(
        self,
        link: PeerLink,
        hooks: SessionHooks,
        limits: SessionLimits,
        *,
        since: int | None,
        nip77: bool | None,
    ) -> None:
        self.link = link
        self.hooks = hooks
        self.limits = limits
        self.since = since
        #: None: not tried yet on this peer; False: the peer does not answer NEG-OPEN.
        self.nip77 = nip77
        self.requested_ids = 0
        self._subs = itertools.count(1)
        self._live = _Buffer(hooks.feed, limits)
        self._walking = False
        self._newest: int | None = None

    def run(self) -> None:
        version, hosted = self.hooks.hosted()
        self._subscribe(hosted)
        known = self._walk(self.since, self._everything, full=self.since is None)
        while not self.hooks.stopping():
            current, hosted = self.hooks.hosted()
            if self.hooks.reconcile_due():
                version = current
                self._subscribe(hosted)
                known = self._walk(None, self._everything, full=True)
            elif current != version:
                # Only what was added since the last walk: new repositories, new roots.
                version, base = current, known
                self._subscribe(hosted)
                added = functools.partial(self._added_since, base)
                known = self._walk(None, added, full=False)
            else:
                message = self.link.receive()
                if message is not None:
                    self._other(message)

    def _everything(self) -> Hosted:
        return self.hooks.hosted()[1]

    def _added_since(self, base: Hosted) -> Hosted:
        return _added(self._everything(), base)

    # --- the history walk -----------------------------------------------------------------

    def _subscribe(self, hosted: Hosted) -> None:
        self.link.send("REQ", LIVE_SUB, *live_filters(hosted))

    def _walk(self, since: int | None, scope: Callable[[], Hosted], *, full: bool) -> Hosted:
        """Every stage over ``scope()`` (read again at each stage: stage 3's roots come from
        stage 2); returns everything hosted as stage 3 started, the base of the next walk."""
        self._walking = True
        used_nip77 = False
        self._newest = None
        seen = self._everything()
        try:
            for stage in range(1, STAGES + 1):
                if stage == STAGES:
                    seen = self._everything()
                filters = stage_filters(stage, scope())
                buffer = _Buffer(self.hooks.feed, self.limits)
                used_nip77 |= self._stage(filters, since, buffer)
                buffer.flush()
                if self.hooks.stopping():
                    return seen
        finally:
            self._walking = False
        self._live.flush()
        self.hooks.caught_up(self._newest, used_nip77, full)
        return seen

    def _stage(self, filters: list[dict[str, Any]], since: int | None, buffer: _Buffer) -> bool:
        """One stage's history into ``buffer``; True when NIP-77 carried it."""
        if not filters:
            return False
        if self.nip77 is not False:
            needs: list[str] = []
            for flt in filters:
                found = self._reconcile(with_window(flt, since, None))
                if found is None:
                    break
                needs.extend(sorted(found.need_ids))
            else:
                self._fetch_ids(needs[:MAX_NEED_IDS], buffer)
                return True
        for start in range(0, len(filters), PAGE_FILTERS):
            self._page(filters[start : start + PAGE_FILTERS], since, buffer)
        return False

    def _reconcile(self, flt: dict[str, Any]) -> ReconcileResult | None:
        """One NIP-77 reconciliation; None when the peer does not do NIP-77 (remembered)."""
        sub = f"grasp-peer-neg{next(self._subs)}"
        try:
            parsed = Filter.from_json(flt)
        except InvalidFilter:
            logger.warning("peer %s: cannot reconcile filter %r", self.link.url, flt)
            return None
        ours = self.hooks.local_items(parsed)
        initiator = NegentropyInitiator(
            ours, sub, parsed, frame_size_limit=self.limits.frame_size_limit
        )
        self.link.send(*initiator.open_frame())
        deadline = time.monotonic() + self.limits.neg_timeout
        while time.monotonic() < deadline and not self.hooks.stopping():
            message = self.link.receive()
            if message is None:
                continue
            if message.verb in ("NEG-MSG", "NEG-ERR") and message.sub_id == sub:
                try:
                    reply = initiator.on_frame(message.frame)
                except (NegentropyRefused, Nip77Error) as exc:
                    self._no_nip77(f"{message.verb} {exc}")
                    return None
                if isinstance(reply, ReconcileResult):
                    self.link.send(*initiator.close_frame())
                    self.nip77 = True
                    return reply
                self.link.send(*reply)
                deadline = time.monotonic() + self.limits.neg_timeout
            elif message.verb == "NOTICE" or (message.verb == "CLOSED" and message.sub_id == sub):
                self._no_nip77(f"{message.verb} {message.text[:120]}")
                return None
            else:
                self._other(message)
        self._no_nip77(f"no NEG-MSG within {self.limits.neg_timeout:g} s")
        return None

    def _no_nip77(self, why: str) -> None:
        logger.info("peer %s: no NIP-77 (%s); REQ/EOSE paging instead", self.link.url, why)
        self.nip77 = False

    def _fetch_ids(self, ids: list[str], buffer: _Buffer) -> None:
        for start in range(0, len(ids), IDS_BATCH):
            batch = ids[start : start + IDS_BATCH]
            self.requested_ids += len(batch)
            self._req([{"ids": batch}], buffer)

    def _page(self, filters: list[dict[str, Any]], since: int | None, buffer: _Buffer) -> None:
        until: int | None = None
        seen_at_until: set[str] = set()
        for _ in range(self.limits.max_pages):
            page = self._req([with_window(f, since, until) for f in filters], buffer)
            new = [e for e in page if e.id not in seen_at_until]
            if not new:
                return
            oldest = min(e.created_at for e in page)
            at_oldest = {e.id for e in page if e.created_at == oldest}
            seen_at_until = seen_at_until | at_oldest if oldest == until else at_oldest
            until = oldest
        logger.warning("peer %s: history stopped at %d pages", self.link.url, self.limits.max_pages)

    def _req(self, filters: list[dict[str, Any]], buffer: _Buffer) -> list[Event]:
        """One REQ until its EOSE; its events go to ``buffer`` and are returned."""
        sub = f"grasp-peer-h{next(self._subs)}"
        self.link.send("REQ", sub, *filters)
        page: list[Event] = []
        deadline = time.monotonic() + self.limits.history_timeout
        while not self.hooks.stopping():
            if time.monotonic() > deadline:
                raise SourceGone(
                    f"history request made no progress for {self.limits.history_timeout:g} s"
                )
            message = self.link.receive()
            if message is None:
                continue
            if message.sub_id == sub and message.verb == "EVENT":
                event = self._valid(message)
                if event is not None:
                    page.append(event)
                    buffer.add(event)
                    self._newest = max(self._newest or 0, event.created_at)
                    deadline = time.monotonic() + self.limits.history_timeout
            elif message.sub_id == sub and message.verb == "EOSE":
                self.link.send("CLOSE", sub)
                return page
            elif message.sub_id == sub and message.verb == "CLOSED":
                raise SourceGone(f"peer closed history request: {message.text[:200]}")
            else:
                self._other(message)
        return page

    # --- everything else ------------------------------------------------------------------

    def _other(self, message: RelayMessage) -> None:
        """Live events (buffered while walking), the live sub's CLOSED, NOTICEs."""
        if message.verb == "EVENT" and message.sub_id == LIVE_SUB:
            event = self._valid(message)
            if event is None:
                return
            if self._walking:
                self._live.add(event)
            else:
                self.hooks.feed([event])
                self.hooks.live(event)
        elif message.verb == "CLOSED" and message.sub_id == LIVE_SUB:
            raise SourceGone(f"peer closed the live subscription: {message.text[:200]}")
        elif message.verb == "NOTICE":
            logger.info("peer %s: NOTICE %s", self.link.url, message.text[:200])

    def _valid(self, message: RelayMessage) -> Event | None:
        try:
            return Event.from_json(message.event)
        except InvalidEvent as exc:
            self.link.dropped(f"event {exc.event_id or '(no id)'}: {exc.message}")
        except Exception:  # a validator bug must not end the connection
            logger.warning("peer %s: could not validate an event", self.link.url, exc_info=True)
            self.link.dropped("event could not be validated")
        return None


def _added(now: Hosted, base: Hosted) -> Hosted:
    """What is hosted now and was not at ``base``."""
    return Hosted(now.repositories - base.repositories, now.roots - base.roots)
