"""FetchActors: short-lived workers that do the blocking part of a sync, then stop.

A FetchActor MUST report exactly once — ``SyncFinished`` to the Scheduler on the main path,
``QueuedFetchDone`` to its DomainThrottle on the throttle path — whatever happens, and hand
every release to the Releaser (S8.1). It MAY block on the network; nothing else does. The
blocking work runs through ``effects.run`` (a cancellable greenlet, see
:class:`~actors.directory.LiveEffects`). A failure the port names (:class:`FetchFailed`) is
handled by the sync functions; anything else is a bug: logged here once with its traceback,
reported as an incomplete sync, and retried by the Scheduler's backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from messages.fetch import FetchFromDomain, SyncIdentifier
from messages.scheduler import SyncFinished
from messages.throttle import QueuedFetchDone, SlotFreed

from .base import BaseActor, handles
from .domain import ThrottleClient
from .effects import Effects, WorkCancelled
from .names import SCHEDULER, throttle_name
from .port import FetcherView
from .sync import sync_identifier, sync_identifier_from_url, sync_identifier_next_url

logger = logging.getLogger(__name__)

__all__ = ["FetchActor", "HeldSlot"]

T = TypeVar("T")


class HeldSlot:
    """Throttle stand-in for the throttle path: the DomainThrottle reserved the slot already;
    when the request ends it hears ``SlotFreed`` at once, before any release work."""

    def __init__(self, effects: Effects, identifier: str) -> None:
        self.effects, self.identifier = effects, identifier

    def is_throttled(self, domain: str) -> bool:
        return False

    def start_request(self, domain: str) -> bool:
        return True

    def complete_request(self, domain: str) -> None:
        self.effects.tell(throttle_name(domain), SlotFreed(self.identifier))

    def enqueue_identifier(self, domain: str, identifier: str, tried_urls: Iterable[str]) -> None:
        pass


class FetchActor(BaseActor):
    """One unit of work: a main-path sync or one throttle-path fetch; then it stops."""

    @handles(SyncIdentifier)
    def on_sync(self, msg: SyncIdentifier, now: float) -> None:
        view = FetcherView(self.services, self.effects)
        throttle = ThrottleClient(self.effects, msg.identifier)
        complete = self._run(sync_identifier, view, msg.identifier, throttle)
        self.effects.tell(SCHEDULER, SyncFinished(msg.identifier, complete is True))
        self.effects.stop()

    @handles(FetchFromDomain)
    def on_fetch_from_domain(self, msg: FetchFromDomain, now: float) -> None:
        view = FetcherView(self.services, self.effects)
        url = self._run(self._fetch_from_domain, view, msg)
        self.effects.tell(throttle_name(msg.domain), QueuedFetchDone(msg.identifier, url))
        self.effects.stop()

    def _fetch_from_domain(self, view: FetcherView, msg: FetchFromDomain) -> str | None:
        """The throttle path's unit of work (S6.3): one untried URL of the domain, or None."""
        throttle = ThrottleClient(self.effects)
        url = sync_identifier_next_url(view, msg.identifier, msg.domain, msg.tried_urls, throttle)
        if url is not None:
            slot = HeldSlot(self.effects, msg.identifier)
            sync_identifier_from_url(view, msg.identifier, url, slot)
        return url

    def _run(self, work: Callable[..., T], *args: Any) -> T | None:
        """Run the blocking work; a bug is logged once with its traceback and yields None."""
        try:
            return self.effects.run(work, *args)
        except WorkCancelled:
            logger.info("%s: cancelled by shutdown", self.name)
        except Exception:
            logger.exception("%s: %s failed", self.name, getattr(work, "__name__", work))
        return None
