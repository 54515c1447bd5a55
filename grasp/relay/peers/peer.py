"""One peer relay, synced on its own greenlet (S17.2, S17.4): a thin shell around the policy.

The loop: wait while :class:`~.health.PeerHealth` says so (backoff, cool-down, naughty list) or
while nothing is hosted; check the address against the fetch policy (S3.4, after DNS: a name
that resolves to a private address is refused like a literal one); connect; run a
:class:`~.session.PeerSession`; on failure classify it (:func:`classify`) and let the health
policy decide when to try again. A session that caught up resets the backoff.

Resume: a reconnect within :data:`RESUME_WINDOW_SECS` (15 min, ngit-grasp's) of the last live
event asks only for ``since`` = that event's ``created_at`` minus ``resume_overlap``; a longer
absence walks the whole history again.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import gevent
import websocket

from grasp.git import FetchError, check_url
from grasp.nostr.event import Event
from grasp.nostr.results import Prefix
from grasp.relay.peers.health import Failure, PeerHealth
from grasp.relay.peers.link import PeerGarbage, PeerLink, RateLimited
from grasp.relay.peers.session import PeerSession, SessionHooks
from grasp.relay.sync_sources.wire import BoundedWebSocket, SourceGone, describe_error
from grasp.store.peers import PeerRow

if TYPE_CHECKING:
    from grasp.relay.peers.network import PeerNetwork

logger = logging.getLogger(__name__)

__all__ = ["RESUME_WINDOW_SECS", "Peer", "PeerStatus", "classify"]

RESUME_WINDOW_SECS = 900.0
_HTTP_OF = {"ws": "http", "wss": "https"}


def classify(exc: BaseException) -> Failure:
    """Which health answer a connection failure gets (S17.4)."""
    if isinstance(exc, RateLimited):
        return Failure.RATE_LIMITED
    if isinstance(exc, socket.gaierror) or (isinstance(exc, FetchError) and exc.reason == "dns"):
        return Failure.DNS
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return Failure.TLS
    if isinstance(exc, FetchError):
        return Failure.POLICY  # the address is refused: it will not change by itself soon
    if isinstance(
        exc,
        PeerGarbage | websocket.WebSocketBadStatusException | websocket.WebSocketProtocolException,
    ):
        return Failure.PROTOCOL
    return Failure.TRANSIENT


@dataclass(frozen=True)
class PeerStatus:
    """One peer on ``/status`` (S17.4). Times are wall-clock Unix seconds."""

    url: str
    origin: str
    state: str
    last_error: str | None
    events_received: int
    events_accepted: int
    last_reconciled_at: float | None
    nip77: bool | None
    failures: int
    next_attempt_at: float | None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Peer:
    """A peer's greenlet, health and counters; ``network`` gives it everything relay-side."""

    def __init__(
        self,
        row: PeerRow,
        network: PeerNetwork,
        health: PeerHealth,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = gevent.sleep,
    ) -> None:
        self.url = row.url
        self.origin = row.origin
        self.discovered_at = row.discovered_at
        self.network = network
        self.health = health
        self.clock = clock
        self.sleep = sleep
        self.state = "stopped"
        self.received = row.events_received
        self.accepted = 0
        self.last_reconciled_at = row.last_reconciled_at
        self.nip77: bool | None = None
        self._session: PeerSession | None = None
        self._greenlet: gevent.Greenlet | None = None
        self._stopping = False
        self._last_live: tuple[float, int] | None = None  # (when, created_at)

    def row(self) -> PeerRow:
        h = self.health
        return PeerRow(
            self.url,
            self.origin,
            self.discovered_at,
            h.last_error,
            h.failures,
            h.next_attempt_at,
            h.naughty.until(self.url, self.clock()),
            self.received,
            self.last_reconciled_at,
        )

    def status(self) -> PeerStatus:
        h = self.health
        return PeerStatus(
            self.url,
            self.origin,
            self.state,
            h.last_error,
            self.received,
            self.accepted,
            self.last_reconciled_at,
            self._session.nip77 if self._session is not None else self.nip77,
            h.failures,
            h.next_attempt_at,
        )

    def start(self) -> None:
        if self._greenlet is not None and not self._greenlet.dead:
            return
        self._stopping = False
        self._greenlet = gevent.spawn(self._run)
        self._greenlet.name = f"peer {self.url}"

    def stop(self, timeout: float = 5.0) -> bool:
        self._stopping = True
        greenlet = self._greenlet
        if greenlet is not None:
            if self.network.feeding(self):
                greenlet.join(timeout)  # a policy call in progress may be writing refs
            greenlet.kill(block=True, timeout=timeout)
        self.state = "stopped"
        return greenlet is None or greenlet.dead

    # --- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                wait = self.health.wait(self.clock())
                if wait > 0:
                    self.state = (
                        "naughty"
                        if self.health.naughty.until(self.url, self.clock())
                        else "backing off"
                    )
                    self.sleep(min(wait, 60.0))
                    continue
                if not self.network.hosted()[1].repositories:
                    self.state = "idle (nothing hosted)"
                    self.network.wait_for_hosted(60.0)
                    continue
                self._connect_once()
        finally:
            self.state = "stopped"

    def _connect_once(self) -> None:
        self.state = "connecting"
        ws = BoundedWebSocket(self.network.wire.max_message_bytes)
        try:
            self._check_address()
            ws.settimeout(self.network.wire.connect_timeout)
            ws.connect(self.url)
            ws.settimeout(self.network.wire.ping_interval)
            self.state = "connected"
            logger.info("peer %s: connected", self.url)
            link = PeerLink(self.url, ws, self.network.wire.ping_interval)
            session = self._session = PeerSession(
                link, self._hooks(), self.network.limits, since=self._since(), nip77=self.nip77
            )
            try:
                session.run()
            finally:
                self.nip77, self._session = session.nip77, None
        except Exception as exc:  # every failure backs off; none ends the peer
            self._failed(exc)
        finally:
            ws.close_quietly()

    def _check_address(self) -> None:
        """S3.4 after DNS: the peer's host must resolve to an address the fetch policy allows."""
        parts = urlsplit(self.url)
        probe = f"{_HTTP_OF[parts.scheme]}://{parts.netloc}/"
        timeout = self.network.wire.connect_timeout
        with gevent.Timeout(timeout, SourceGone(f"DNS lookup took over {timeout:g} s")):
            check_url(probe, self.network.fetch_policy)

    def _failed(self, exc: BaseException) -> None:
        failure = classify(exc)
        text = exc.detail if isinstance(exc, FetchError) else describe_error(exc)
        if failure is Failure.TRANSIENT and not isinstance(
            exc, OSError | SourceGone | websocket.WebSocketException
        ):
            logger.warning("peer %s: internal error", self.url, exc_info=exc)
            text = f"internal error: {exc!r}"
        delay = self.health.failed(failure, text, self.clock())
        logger.warning(
            "peer %s: %s (%s); next attempt in %.0f s", self.url, text, failure.value, delay
        )
        self.state = "backing off"
        self.network.persist(self)

    def _since(self) -> int | None:
        if self._last_live is None:
            return None
        when, created_at = self._last_live
        if self.clock() - when > RESUME_WINDOW_SECS:
            return None
        capped = min(created_at, int(self.clock()))
        return max(capped - self.network.wire.resume_overlap, 0)

    # --- what the session calls -----------------------------------------------------------

    def _hooks(self) -> SessionHooks:
        return SessionHooks(
            hosted=self.network.hosted,
            local_items=self.network.local_items,
            feed=self._feed,
            reconcile_due=self._reconcile_due,
            caught_up=self._caught_up,
            live=self._on_live,
            stopping=lambda: self._stopping,
        )

    def _feed(self, events: list[Event]) -> None:
        for _event, result in self.network.offer(self, events):
            self.received += 1
            if result.accepted and result.prefix is not Prefix.DUPLICATE:
                self.accepted += 1
            if self._stopping:
                return

    def _reconcile_due(self) -> bool:
        last = self.last_reconciled_at
        return last is not None and self.clock() - last >= self.network.reconcile_interval

    def _caught_up(self, newest: int | None, used_nip77: bool, full: bool) -> None:
        if full:
            self.last_reconciled_at = self.clock()
        self.health.caught_up()
        nip77 = used_nip77 or (self._session is not None and self._session.nip77 is True)
        self.state = "live (NIP-77)" if nip77 else "live"
        if newest is not None and self._last_live is None:
            self._last_live = (self.clock(), newest)
        self.network.persist(self)
        logger.info("peer %s: caught up (%s)", self.url, "NIP-77" if used_nip77 else "REQ paging")

    def _on_live(self, event: Event) -> None:
        self._last_live = (self.clock(), max(event.created_at, (self._last_live or (0, 0))[1]))
