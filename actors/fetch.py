"""FetchActors: short-lived workers that do the blocking part of a sync, then stop.

A FetchActor MUST report exactly once — ``SyncFinished`` to the Scheduler on the main path,
``QueuedFetchDone`` to its DomainThrottle on the throttle path — whatever happens, and hand
every release to the Releaser (S8.1). It MAY block on the network; nothing else does. The
blocking work runs through ``effects.run`` (in the actor's greenlet, cancellable by shutdown: see
:mod:`actors.work`). A failure the port names (:class:`FetchFailed`) is
handled by the sync functions; anything else is a bug: logged here once with its traceback,
reported as an incomplete sync, and retried by the Scheduler's backoff.

After each request it tells the Scheduler a ``FetchAttempted`` (S18.1: the Scheduler keeps the
sync history; ``ask`` only goes down, so the history travels up by ``tell``) — on the main path
before its next request starts, the last one inside the ``SyncFinished`` — and the messages
that end its work carry the URL and the reason (S18.2), so a trace explains a failure.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from messages.fetch import FetchFromDomain, SyncIdentifier
from messages.scheduler import RELEASE_FAILED, THROTTLED, FetchAttempted, SyncFinished
from messages.throttle import QueuedFetchDone, SlotFreed

from .base import BaseActor, handles
from .context import LEASED
from .domain import ThrottleClient
from .effects import Effects, WorkCancelled
from .names import SCHEDULER, throttle_name
from .port import FetcherView
from .sync import AttemptSink, fetch_next_of_domain, sync_identifier

logger = logging.getLogger(__name__)

__all__ = ["FetchActor", "HeldSlot"]

T = TypeVar("T")


class HeldSlot:
    """Throttle stand-in for the throttle path: the DomainThrottle reserved the slot already;
    it hears ``SlotFreed`` once, when the transfer ended (the pack's last byte) or else when
    the request ended, before any release work."""

    def __init__(self, effects: Effects, identifier: str) -> None:
        self.effects, self.identifier = effects, identifier

    def is_throttled(self, domain: str) -> bool:
        return False

    def start_request(self, domain: str) -> bool:
        return True

    def transfer_ended(self, domain: str, url: str) -> None:
        self.effects.tell(throttle_name(domain), SlotFreed(self.identifier, url, None))

    def complete_request(
        self, domain: str, url: str | None = None, reason: str | None = None, freed: bool = False
    ) -> None:
        if not freed:  # else SlotFreed went at the transfer's end; QueuedFetchDone has the reason
            self.effects.tell(throttle_name(domain), SlotFreed(self.identifier, url, reason))

    def enqueue_identifier(self, domain: str, identifier: str, tried_urls: Iterable[str]) -> None:
        pass


class FetchActor(BaseActor):
    """One unit of work: a main-path sync or one throttle-path fetch; then it stops."""

    registered = False  # one per unit of work: kept out of pykka's list (actors/runtime.py)

    @handles(SyncIdentifier)
    def on_sync(self, msg: SyncIdentifier, now: float) -> None:
        view = FetcherView(self.services, self.effects)
        if not self._lease(view, msg.identifier):  # S19.2: another node syncs it right now
            self.effects.tell(SCHEDULER, SyncFinished(msg.identifier, False, None, LEASED))
            self.effects.stop()
            return
        attempts = _HeldAttempts(self.effects)
        throttle = ThrottleClient(self.effects, msg.identifier, attempts.flush)
        work = functools.partial(
            sync_identifier,
            skip_urls=msg.skip_urls,
            on_attempt=attempts.report,
            release_first=view.release_soon,
        )
        try:
            complete = self._run(work, view, msg.identifier, throttle)
        finally:
            self._unlease(view, msg.identifier)
        url, reason = _sync_end(complete, attempts.made, throttle.queued_on, view.release_failed)
        finished = SyncFinished(msg.identifier, complete is True, url, reason, attempts.held)
        self.effects.tell(SCHEDULER, finished)
        self.effects.stop()

    @handles(FetchFromDomain)
    def on_fetch_from_domain(self, msg: FetchFromDomain, now: float) -> None:
        view = FetcherView(self.services, self.effects)
        attempts: list[FetchAttempted] = []
        url = self._run(self._fetch_from_domain, view, msg, self._reporter(attempts, msg.domain))
        reason = attempts[-1].reason if attempts else None
        done = QueuedFetchDone(msg.identifier, url, reason)
        self.effects.tell(throttle_name(msg.domain), done)
        self.effects.stop()

    def _fetch_from_domain(
        self, view: FetcherView, msg: FetchFromDomain, report: AttemptSink
    ) -> str | None:
        """The throttle path's unit of work (S6.3): one untried URL of the domain, or None."""
        if not self._lease(view, msg.identifier):
            return None  # the node holding the lease syncs it; this queue lets it go (S19.2)
        try:
            slot = HeldSlot(self.effects, msg.identifier)
            return fetch_next_of_domain(
                view, msg.identifier, msg.domain, msg.tried_urls, slot, report
            )
        finally:
            self._unlease(view, msg.identifier)

    def _lease(self, view: FetcherView, identifier: str) -> bool:
        """Take the identifier's lease (S19.2) before any fetch; a port fault counts as not
        taken (the Scheduler retries soon; a sync without the lease could run twice)."""
        try:
            return view.take_lease(identifier)
        except Exception:
            logger.exception("%s: taking the lease of %s failed", self.name, identifier)
            return False

    def _unlease(self, view: FetcherView, identifier: str) -> None:
        """Give the lease back; a fault leaves it to expire (the port stops renewing it)."""
        try:
            view.release_lease(identifier)
        except Exception:
            logger.exception("%s: releasing the lease of %s failed", self.name, identifier)

    def _reporter(self, sink: list[FetchAttempted], queue: str) -> AttemptSink:
        """The throttle path's attempt, kept for ``QueuedFetchDone`` and told to the Scheduler
        at once (S18.1): a queued request that fell short brings the backoff's retry back."""

        def report(attempt: FetchAttempted) -> None:
            attempt = dataclasses.replace(attempt, queue=queue)
            sink.append(attempt)
            self.effects.tell(SCHEDULER, attempt)

        return report

    def _run(self, work: Callable[..., T], *args: Any) -> T | None:
        """Run the blocking work; a bug is logged once with its traceback and yields None."""
        try:
            return self.effects.run(work, *args)
        except WorkCancelled:
            logger.info("%s: cancelled by shutdown", self.name)
        except Exception:
            name = getattr(getattr(work, "func", work), "__name__", work)  # a partial's function
            logger.exception("%s: %s failed", self.name, name)
        return None


class _HeldAttempts:
    """A main-path sync's requests (S18.1). Each is held back until the next request starts
    (``flush``, from :class:`ThrottleClient` before its ``TryStart``) and then told to the
    Scheduler; the last one travels in the ``SyncFinished``. On the main path that is most
    often the only request: one ``FetchAttempted`` message fewer per identifier (P4), and the
    Scheduler's history holds the same attempts in the same order (it records the carried one
    before it finishes the sync)."""

    __slots__ = ("effects", "made", "held")

    def __init__(self, effects: Effects) -> None:
        self.effects = effects
        self.made: list[FetchAttempted] = []
        self.held: FetchAttempted | None = None

    def report(self, attempt: FetchAttempted) -> None:
        self.flush()
        self.made.append(attempt)
        self.held = attempt

    def flush(self) -> None:
        held, self.held = self.held, None
        if held is not None:
            self.effects.tell(SCHEDULER, held)


def _sync_end(
    complete: bool | None,
    attempts: list[FetchAttempted],
    queued_on: list[str],
    release_failed: bool = False,
) -> tuple[str | None, str | None]:
    """The URL and reason a ``SyncFinished`` carries (S18.2): the last URL asked, and why the
    sync is incomplete — its last failed request, or left to throttled domains, or the last
    release pass failed with nothing left to fetch, or no URL."""
    last = attempts[-1].url if attempts else None
    if complete is True:
        return last, None
    if complete is None:
        return last, "error"
    failed = [a for a in attempts if a.reason is not None]
    if failed:
        return failed[-1].url, failed[-1].reason
    if queued_on:
        return last, THROTTLED
    return last, RELEASE_FAILED if release_failed else "no_url"
