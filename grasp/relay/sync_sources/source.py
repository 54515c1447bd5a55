"""Sync sources (S10.7, GRASP-02 event sync): copy NIP-34 events from other relays.

For each ``--sync-source ws://...`` one greenlet holds a websocket-client connection, subscribes
to the S10.7 kinds (historic, then live) and hands every valid event to the relay's own write
policy as ``EventSource.SYNC`` — so a synced event gets the short sync delay (S4.2) and the
expired-id refusal (S1.4), and is otherwise treated exactly like a published one.

Decisions, each for a reason:

* **History is paged and fed in dependency order** (:mod:`grasp.relay.sync_sources.history`):
  sources clamp ``limit`` and send newest first, the policy needs announcements first.
  Announcements refused as ``invalid:`` are offered again while a pass accepts something new,
  because a maintainer's announcement is only accepted after the owner's that lists them (S10.3,
  S10.4), whatever their timestamps.
* **Reconnect with backoff** 5 s doubling to 5 min (S10.7), reset once a connection caught up
  with the history. A reconnect asks only for ``since`` = newest ``created_at`` seen (capped at
  now, so one future-dated event cannot hide the rest) minus ``resume_overlap``: events the
  source received while we were away are re-delivered, the whole history is not. Duplicates are
  harmless, the policy answers ``duplicate:``. The resume point only advances after a history
  walk completed, so a connection lost mid-walk repeats the walk.
* **Never block the hub**: the loop yields every few events (signature checks and policy calls
  are CPU work); **bounded memory**: messages are capped (:mod:`grasp.relay.sync_sources.wire`),
  the history buffer too; **no bad frame ends the loop**: it is counted and logged at DEBUG.
* **Stopping is safe**: a policy call in progress is allowed to finish (it may be writing refs
  and events), everything else — socket wait, backoff sleep, connect — is interrupted at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gevent
import websocket

from grasp.admission.intake import EventSource, WritePolicy
from grasp.nostr.event import Event, InvalidEvent
from grasp.nostr.results import Prefix, Result
from grasp.relay.sync_sources.history import HistorySync, offer_in_order
from grasp.relay.sync_sources.settings import SYNC_KINDS, SyncSourceSettings
from grasp.relay.sync_sources.status import Backoff, Counters, SourceState, SyncSourceStatus
from grasp.relay.sync_sources.wire import (
    BoundedWebSocket,
    FrameError,
    MessageSkipped,
    RelayMessage,
    SourceGone,
    close_frame_text,
    describe_error,
    parse_relay_message,
)

logger = logging.getLogger(__name__)

__all__ = [
    "SYNC_KINDS",
    "Backoff",
    "SourceState",
    "SyncSource",
    "SyncSourceSettings",
    "SyncSourceStatus",
    "SyncSources",
]

LIVE_SUB = "grasp-sync"
PAGE_SUB_PREFIX = "grasp-sync-page-"
#: Yield to other greenlets after this many events handled back to back.
YIELD_EVERY = 32


class _Page:
    """The history page being read on one connection, and when it must have made progress."""

    def __init__(self, sub_id: str, timeout: float) -> None:
        self.sub_id = sub_id
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout

    def progressed(self) -> None:
        self.deadline = time.monotonic() + self.timeout


class SyncSource:
    """One source relay, synced on its own greenlet between :meth:`start` and :meth:`stop`.

    ``settings`` are the numbers every source of the relay shares (:class:`SyncSourceSettings`).
    ``write_policy`` is the relay's ``accept_event``, called as ``write_policy(event,
    EventSource.SYNC)`` on the sync greenlet. ``clock`` (wall-clock seconds: status times and
    the resume cap) and ``sleep`` (the backoff wait) are there for tests.
    """

    def __init__(
        self,
        url: str,
        settings: SyncSourceSettings,
        write_policy: WritePolicy,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = gevent.sleep,
    ) -> None:
        self.url = url
        self.settings = settings
        self.write_policy = write_policy
        self._kind_set = frozenset(settings.kinds)
        self.clock = clock
        self.sleep = sleep
        self._backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self._greenlet: gevent.Greenlet | None = None
        self._ws: BoundedWebSocket | None = None
        self._stopping = False
        self._feeding = False
        self._work = 0
        self._counts = Counters()
        self._state = SourceState.STOPPED
        self._attempts = 0
        self._connected_since: float | None = None
        self._last_event_at: float | None = None
        self._last_error: str | None = None
        self._next_attempt_at: float | None = None
        self._caught_up = False
        self._resume_from: int | None = None
        self._last_received = 0.0

    def __repr__(self) -> str:
        return f"<SyncSource {self.url} {self._state.value}>"

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start syncing on a new greenlet (a no-op while already running)."""
        if self._greenlet is not None and not self._greenlet.dead:
            return
        self._stopping = False
        self._state = SourceState.CONNECTING
        self._greenlet = gevent.Greenlet(self._run)
        self._greenlet.name = f"sync-source {self.url}"
        self._greenlet.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Close the connection and end the greenlet; True when it ended within ``timeout`` s.

        A policy call in progress is waited for (up to ``timeout``) rather than interrupted.
        """
        self._stopping = True
        greenlet = self._greenlet
        if greenlet is not None:
            if self._feeding:
                greenlet.join(timeout)
            greenlet.kill(block=True, timeout=timeout)
        ws = self._ws
        if ws is not None:  # only if the greenlet did not get to close it
            ws.close_quietly()
            self._ws = None
        self._state = SourceState.STOPPED
        self._connected_since = self._next_attempt_at = None
        return greenlet is None or greenlet.dead

    def status(self) -> SyncSourceStatus:
        c = self._counts
        return SyncSourceStatus(
            url=self.url,
            state=self._state.value,
            connected_since=self._connected_since,
            last_event_at=self._last_event_at,
            events_received=c.received,
            events_accepted=c.accepted,
            events_duplicate=c.duplicate,
            events_rejected=c.rejected,
            events_invalid=c.invalid,
            reconnects=max(self._attempts - 1, 0),
            last_error=self._last_error,
            next_attempt_at=self._next_attempt_at,
            caught_up=self._caught_up,
        )

    # --- the connection loop -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                self._connect_and_sync()
                if not self._stopping:
                    self._back_off()
        finally:
            self._state = SourceState.STOPPED
            self._connected_since = self._next_attempt_at = None

    def _back_off(self) -> None:
        delay = self._backoff.next_delay()
        self._state = SourceState.BACKING_OFF
        self._next_attempt_at = self.clock() + delay
        logger.debug("sync source %s: reconnecting in %g s", self.url, delay)
        self.sleep(delay)
        self._next_attempt_at = None

    def _connect_and_sync(self) -> None:
        self._state = SourceState.CONNECTING
        self._attempts += 1
        ws = self._ws = BoundedWebSocket(self.settings.max_message_bytes)
        try:
            ws.settimeout(self.settings.connect_timeout)
            ws.connect(self.url)
            ws.settimeout(self.settings.ping_interval)
            self._state = SourceState.CONNECTED
            self._connected_since = self.clock()
            self._last_received = time.monotonic()
            logger.info("sync source %s: connected (since=%s)", self.url, self._resume_since())
            self._sync(ws)
        except (SourceGone, websocket.WebSocketException, OSError) as exc:
            self._last_error = describe_error(exc)
            logger.warning("sync source %s: %s", self.url, self._last_error)
        except Exception as exc:  # a bug here must not end syncing for good: back off, retry
            self._last_error = f"internal error: {exc!r}"
            logger.exception("sync source %s: connection failed", self.url)
        finally:
            self._ws = None
            ws.close_quietly()
            self._connected_since = None
            self._caught_up = False

    def _sync(self, ws: BoundedWebSocket) -> None:
        """Page through the history, then stay live; returns only when stopping."""
        s = self.settings
        history = HistorySync(
            s.kinds,
            self._resume_since(),
            max_buffered=s.max_buffered,
            max_buffered_bytes=s.max_buffered_bytes,
            max_pages=s.max_pages,
        )
        page = _Page(LIVE_SUB, s.history_timeout)
        ws.send_message("REQ", LIVE_SUB, history.first_filter())
        while not self._stopping:
            if not history.done and time.monotonic() > page.deadline:
                raise SourceGone(
                    f"history page {history.pages + 1} made no progress for "
                    f"{s.history_timeout:g} s (no EOSE)"
                )
            message = self._receive(ws)
            if message is None:
                continue
            if message.verb == "EVENT":
                self._on_event(message, history, page)
            elif message.verb == "EOSE" and message.sub_id == page.sub_id and not history.done:
                self._on_page_end(ws, history, page)
            elif message.verb == "CLOSED" and message.sub_id in (LIVE_SUB, page.sub_id):
                raise SourceGone(f"source closed subscription {message.sub_id}: {message.text}")
            elif message.verb == "NOTICE":
                logger.info("sync source %s: NOTICE %s", self.url, message.text[:200])

    def _on_event(self, message: RelayMessage, history: HistorySync, page: _Page) -> None:
        event = self._valid_event(message)
        if event is None:
            return
        if history.done:
            self._feed_live(event)
        elif message.sub_id == page.sub_id:
            page.progressed()
            self._feed(history.add_page_event(event))
        else:  # live while paging: buffered so it cannot overtake its history
            self._feed(history.add_live_event(event))

    def _on_page_end(self, ws: BoundedWebSocket, history: HistorySync, page: _Page) -> None:
        if page.sub_id != LIVE_SUB:
            ws.send_message("CLOSE", page.sub_id)
        following = history.end_page()
        if following is None:
            self._finish_history(history)
            return
        page.sub_id = f"{PAGE_SUB_PREFIX}{history.pages}"
        page.progressed()
        ws.send_message("REQ", page.sub_id, following)

    def _receive(self, ws: BoundedWebSocket) -> RelayMessage | None:
        """The next usable message; None after a timeout, a control frame or a dropped frame."""
        try:
            opcode, frame = ws.recv_data_frame(control_frame=True)
        except websocket.WebSocketTimeoutException:
            self._keepalive(ws)
            return None
        except MessageSkipped as exc:
            self._invalid(str(exc))
            return None
        self._last_received = time.monotonic()
        self._cooperate()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise SourceGone(f"source closed the connection{close_frame_text(frame.data)}")
        if opcode == websocket.ABNF.OPCODE_BINARY:
            self._invalid("binary message")
        elif opcode == websocket.ABNF.OPCODE_TEXT:
            try:
                return parse_relay_message(frame.data.decode("utf-8"))
            except UnicodeDecodeError:
                self._invalid("text message is not UTF-8")
            except FrameError as exc:
                self._invalid(str(exc))
        return None

    def _keepalive(self, ws: BoundedWebSocket) -> None:
        """Nothing arrived for a ping interval: ping; after two silent intervals give up."""
        idle = time.monotonic() - self._last_received
        if idle >= 2 * self.settings.ping_interval:
            raise SourceGone(f"no data from the source for {idle:.0f} s")
        ws.ping()

    def _resume_since(self) -> int | None:
        if self._resume_from is None:
            return None
        return max(min(self._resume_from, int(self.clock())) - self.settings.resume_overlap, 0)

    def _finish_history(self, history: HistorySync) -> None:
        self._feed(history.drain())
        if history.newest is not None:
            self._resume_from = max(self._resume_from or 0, history.newest)
        self._caught_up = True
        self._backoff.reset()
        log = logger.warning if history.truncated else logger.info
        log(
            "sync source %s: caught up, %d historic events in %d pages%s",
            self.url,
            history.events,
            history.pages,
            " (stopped at the page limit)" if history.truncated else "",
        )

    # --- events --------------------------------------------------------------------------------

    def _valid_event(self, message: RelayMessage) -> Event | None:
        """Full NIP-01 validation (id, signature) and the requested kinds; else count and drop."""
        if not (message.sub_id == LIVE_SUB or str(message.sub_id).startswith(PAGE_SUB_PREFIX)):
            self._invalid(
                f"EVENT for a subscription we did not open ({str(message.sub_id)[:64]!r})"
            )
            return None
        try:
            event = Event.from_json(message.event)
        except InvalidEvent as exc:
            self._invalid(f"event {exc.event_id or '(no id)'}: {exc.message}")
            return None
        except Exception:  # a validator bug must not turn one frame into a reconnect loop
            logger.warning("sync source %s: could not validate an event", self.url, exc_info=True)
            self._invalid("event could not be validated")
            return None
        if event.kind not in self._kind_set:
            self._invalid(f"event {event.id} of kind {event.kind}, which we did not ask for")
            return None
        self._last_event_at = self.clock()
        return event

    def _feed_live(self, event: Event) -> None:
        self._feed([event])
        self._resume_from = max(self._resume_from or 0, event.created_at)

    def _feed(self, batch: Iterable[Event]) -> None:
        """Offer a batch (already in dependency order); stop between two events when stopping."""
        for event, result in offer_in_order(list(batch), self._offer):
            self._record(event, result)
            if self._stopping:
                return

    def _offer(self, event: Event) -> Result:
        self._feeding = True
        try:
            return self.write_policy(event, EventSource.SYNC)
        except Exception:
            logger.exception("sync source %s: write policy failed on event %s", self.url, event.id)
            return Result.reject(Prefix.ERROR, "write policy failed")
        finally:
            self._feeding = False
            self._cooperate()

    def _record(self, event: Event, result: Result) -> None:
        self._counts.received += 1
        prefix = result.prefix
        if prefix is Prefix.DUPLICATE:
            self._counts.duplicate += 1
        elif result.accepted:
            self._counts.accepted += 1
        else:
            self._counts.rejected += 1
        log = logger.warning if prefix is Prefix.ERROR else logger.debug
        log(
            "sync source %s: event %s kind %d -> %s %r",
            self.url,
            event.id,
            event.kind,
            result.accepted,
            result.message,
        )

    def _invalid(self, why: str) -> None:
        self._counts.invalid += 1
        logger.debug("sync source %s: dropped %s", self.url, why)

    def _cooperate(self) -> None:
        self._work += 1
        if self._work % YIELD_EVERY == 0:
            gevent.sleep(0)


class SyncSources:
    """All configured sources (``Config.sync_sources``); duplicate URLs are synced once.

    ``collaborators`` (``clock``, ``sleep``) are passed to every :class:`SyncSource`.
    """

    def __init__(
        self,
        urls: Iterable[str],
        settings: SyncSourceSettings,
        write_policy: WritePolicy,
        **collaborators: Any,
    ) -> None:
        self.sources: tuple[SyncSource, ...] = tuple(
            SyncSource(url, settings, write_policy, **collaborators) for url in dict.fromkeys(urls)
        )

    def __iter__(self) -> Iterator[SyncSource]:
        return iter(self.sources)

    def __len__(self) -> int:
        return len(self.sources)

    def start(self) -> None:
        for source in self.sources:
            source.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop every source concurrently; True when all greenlets ended in time."""
        stops = [gevent.spawn(source.stop, timeout) for source in self.sources]
        gevent.joinall(stops)
        return all(stop.value for stop in stops)

    def status(self) -> list[SyncSourceStatus]:
        return [source.status() for source in self.sources]
