"""DomainThrottle actors (one per remote host) and the client FetchActors reach them through.

A DomainThrottle MUST: answer ``TryStart`` by checking and starting in one step (S6.4); start
as many queued identifiers as capacity allows on every trigger — enqueue, completion, and the
rate window freeing up (S6.3); clear an identifier's ``in_progress`` before picking the next.
It MUST NOT ask anyone or do I/O beyond the cluster ledger's port calls (S19.2, one per slot
taken or given back): FetchActors do the fetching with the slot it reserved. A
request that ends refused by the fetch policy leaves no entry in the rate window: nothing was
sent to the remote.
DomainThrottles are started lazily by the :class:`~actors.directory.Directory` the first time
a FetchActor names one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import pykka

from messages.fetch import FetchFromDomain
from messages.throttle import (
    EnqueueIdentifier,
    GetThrottleStatus,
    QueuedFetchDone,
    RequestDone,
    SlotFreed,
    ThrottleStatus,
    TransferEnded,
    TryStart,
    WindowFreed,
)

from .base import BaseActor, handles
from .context import NOTHING_ABSENT
from .effects import Binder, Effects
from .names import throttle_name
from .port import TracedPort
from .services import Services
from .throttle import DomainThrottleState

logger = logging.getLogger(__name__)

__all__ = ["DomainThrottle", "ThrottleClient"]

#: A request refused by the fetch policy (S3.4) never left this process: it counts in neither
#: limit once it ended (S6.1 counts what the remote can see).
POLICY = "policy"
#: Request ends the remote never saw: refused by the policy, or nothing was absent (S5.2).
UNCONTACTED = frozenset({POLICY, NOTHING_ABSENT})


class DomainThrottle(BaseActor):
    """The local limits and round-robin queue of one domain (pure state), and its share of the
    cluster's ledger (S19.2): every slot the local state grants is also reserved in the ledger
    through the port, in the same handler, and given back there when it ends. Locally the
    ledger always grants, so a single process behaves as before."""

    def __init__(self, services: Services, bind: Binder, domain: str) -> None:
        super().__init__(services, bind, throttle_name(domain))
        self.state = DomainThrottleState.from_config(domain, services.config)
        self.port = TracedPort(services, self.name)
        self.ledger_retry_at = 0.0  # the ledger refused: not asked again before this instant

    @handles(TryStart)
    def on_try_start(self, msg: TryStart, now: float) -> bool:
        """Check and start in one step (S6.4). An identifier waiting in this domain's queue
        is refused: the queue fetches it from here, so the main path neither jumps the
        round-robin nor fetches the same objects twice. (This was a separate ``IsThrottled``
        ask before every ``TryStart``: one round trip of the four per identifier, P4.)"""
        state = self.state
        if msg.identifier is not None and state.has_queued_identifier(msg.identifier):
            return False
        granted = state.has_capacity(now) and self._ledger_grants(now)
        if granted:
            state.start_request(now)
        self._changed(now)
        return granted

    @handles(TransferEnded)
    def on_transfer_ended(self, msg: TransferEnded, now: float) -> None:
        """The request's last byte arrived: its slot is free before indexing and release."""
        self._free_request(now, contacted=True)

    @handles(RequestDone)
    def on_request_done(self, msg: RequestDone, now: float) -> None:
        if msg.freed:  # the slot came back with TransferEnded: this only reports (S18.2)
            return
        # refused before any network use, or nothing to ask for: the remote saw nothing
        self._free_request(now, contacted=msg.reason not in UNCONTACTED)

    def _free_request(self, now: float, contacted: bool) -> None:
        """Give a main-path request's slot back: into the window if the remote was contacted."""
        before = self.state.in_flight
        if contacted:
            self.state.complete_request(now)
        else:
            self.state.cancel_request()
        self._ledger_free(before, contacted)
        self._pump(now)

    @handles(SlotFreed)
    def on_slot_freed(self, msg: SlotFreed, now: float) -> None:
        before, contacted = self.state.in_flight, msg.reason not in UNCONTACTED
        self.state.release_slot(msg.identifier, now, contacted=contacted)
        self._ledger_free(before, contacted)
        self._pump(now)

    @handles(EnqueueIdentifier)
    def on_enqueue(self, msg: EnqueueIdentifier, now: float) -> None:
        self.state.enqueue_identifier(msg.identifier, msg.tried_urls)
        self._pump(now)

    @handles(QueuedFetchDone)
    def on_queued_done(self, msg: QueuedFetchDone, now: float) -> None:
        before = self.state.in_flight
        self.state.finish_queued(msg.identifier, msg.url, now)
        self._ledger_free(before, contacted=False)  # a slot still reserved carried nothing
        self._pump(now)

    @handles(WindowFreed)
    def on_window_freed(self, msg: WindowFreed, now: float) -> None:
        self._pump(now)

    @handles(GetThrottleStatus)
    def on_status(self, msg: GetThrottleStatus, now: float) -> ThrottleStatus:
        state = self.state
        return ThrottleStatus(
            state.domain,
            state.in_flight,
            state.queued,
            state.window_used(now),
            state.max_concurrent,
            state.max_per_minute,
        )

    def _pump(self, now: float) -> None:
        """Start queued identifiers while the local state and the ledger both have room."""
        state = self.state
        while state.has_capacity(now) and state.has_queued_work() and self._ledger_grants(now):
            started = state.dispatch_ready(now, limit=1)
            if not started:  # cannot happen (work and room were checked): give the slot back
                self.port.ledger_done(state.domain, False)
                break
            for identifier, tried in started:
                logger.debug("%s: dispatching queued %s", self.name, identifier)
                self.effects.spawn_fetch(FetchFromDomain(state.domain, identifier, tried))
        self._changed(now)

    def _ledger_grants(self, now: float) -> bool:
        """Reserve one slot in the cluster's ledger (S19.2), unless it refused a moment ago;
        a refusal says when a slot frees, and the window timer fires then."""
        if now < self.ledger_retry_at:
            return False
        config = self.services.config
        try:
            answer = self.port.ledger_start(
                self.state.domain, config.max_concurrent, config.max_per_minute, config.rate_window
            )
        except Exception:  # the database is away: hold back, ask again soon
            logger.exception("%s: the throttle ledger failed", self.name)
            self.ledger_retry_at = now + 1.0
            return False
        if not answer.granted:
            self.ledger_retry_at = now + answer.retry_in
        return answer.granted

    def _ledger_free(self, in_flight_before: int, contacted: bool) -> None:
        """The local state gave a slot back: give its ledger slot back too. Our own slot
        freeing is also news about the ledger, so the next pump asks it again."""
        if self.state.in_flight >= in_flight_before:
            return
        self.ledger_retry_at = 0.0
        try:
            self.port.ledger_done(self.state.domain, contacted)
        except Exception:  # the port owes it and gives it back once the database answers
            logger.exception("%s: freeing a ledger slot failed", self.name)

    def _changed(self, now: float) -> None:
        state = self.state
        wake = state.wake_at(now)
        if self.ledger_retry_at > now and state.has_queued_work() and state.has_capacity(now):
            wake = self.ledger_retry_at if wake is None else min(wake, self.ledger_retry_at)
        if wake is None:
            self.effects.disarm("window")
        else:
            self.effects.arm("window", wake, WindowFreed())
        self.services.observer.throttle_changed(
            state.domain, state.in_flight, state.queued, state.window_used(now)
        )


class ThrottleClient:
    """The throttle object the sync functions get inside a FetchActor (the four methods of
    :class:`~actors.throttle.ThrottleManager`), speaking to DomainThrottle actors by name.

    ``identifier`` is the main-path identifier being synced, if any: a domain where it already
    waits in the round-robin queue refuses its ``TryStart``. ``queued_on`` lists the domains it
    was queued on, so the sync's end can say it was left to them.

    The check of a domain is its ``TryStart`` itself, one ask per URL (S6.4): ``is_throttled``
    answers from the refusals this client got, without asking. So the sync functions try a
    URL whose domain has not refused yet; a refusal leaves the URL to that domain's queue
    (:func:`~actors.sync.sync_identifier`), and the domain's other URLs are skipped. A separate
    ``IsThrottled`` ask before each ``TryStart`` was one of four round trips per identifier
    (``scripts/bench/scheduler.py``, P4) and could only be stale by the time ``TryStart``
    answered.
    """

    __slots__ = ("effects", "identifier", "queued_on", "refused", "before_request")  # P4

    def __init__(
        self,
        effects: Effects,
        identifier: str | None = None,
        before_request: Callable[[], object] | None = None,
    ) -> None:
        self.effects = effects
        self.identifier = identifier
        self.queued_on: list[str] = []
        self.refused: set[str] = set()
        #: Called before each ``TryStart``: the FetchActor tells the attempt it held back
        #: then, so the history has it before the next request starts (S18.1).
        self.before_request = before_request

    def is_throttled(self, domain: str) -> bool:
        """True once this client's ``TryStart`` on ``domain`` was refused."""
        return domain in self.refused

    def start_request(self, domain: str) -> bool:
        if self.before_request is not None:
            self.before_request()
        msg = TryStart(self.identifier)
        for _ in range(2):  # once more if the throttle died between lookup and ask
            try:
                granted = bool(self.effects.ask(throttle_name(domain), msg))
            except pykka.ActorDeadError:
                continue
            if not granted:
                self.refused.add(domain)
            return granted
        self.refused.add(domain)
        return False

    def transfer_ended(self, domain: str, url: str) -> None:
        self.effects.tell(throttle_name(domain), TransferEnded(url))

    def complete_request(
        self, domain: str, url: str | None = None, reason: str | None = None, freed: bool = False
    ) -> None:
        """The request ended. When its slot came back with ``TransferEnded`` and it brought
        everything (``reason`` None) there is nothing left to say: no ``RequestDone`` (its
        handler only returns then; one message of ten per identifier, P4). A failure after
        the transfer still ends with a ``RequestDone`` carrying its reason (S18.2)."""
        if freed and reason is None:
            return
        self.effects.tell(throttle_name(domain), RequestDone(url, reason, freed))

    def enqueue_identifier(self, domain: str, identifier: str, tried_urls: Iterable[str]) -> None:
        msg = EnqueueIdentifier(identifier, frozenset(tried_urls))
        self.queued_on.append(domain)
        self.effects.tell(throttle_name(domain), msg)
