"""FetchActors: short-lived workers that do the blocking part of a sync, then stop.

A FetchActor MUST report exactly once — ``SyncFinished`` to the Scheduler on the main path,
``QueuedFetchDone`` to its DomainThrottle on the throttle path — whatever happens, and hand
every release to the Releaser (S8.1). It MAY block on the network; nothing else does.
The blocking work runs in a greenlet of ``runtime.work`` so that stopping the system can
cancel it without killing the actor's own greenlet (pykka stops *every* actor when one dies
of a BaseException such as GreenletExit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import gevent
import pykka

from messages.fetch import FetchFromDomain, SyncIdentifier
from messages.releaser import ProcessResult, ProcessSatisfiable
from messages.scheduler import SyncFinished
from messages.throttle import QueuedFetchDone, SlotFreed

from .base import BaseActor, Runtime
from .context import RepositoryData, SyncContext
from .domain import throttle_name
from .sync import sync_identifier, sync_identifier_from_url, sync_identifier_next_url
from .urls import extract_domain

logger = logging.getLogger(__name__)

__all__ = ["FetchActor", "FetcherView", "HeldSlot", "spawn_fetch"]


class FetcherView:
    """The port as a FetchActor sees it: releases go to the Releaser, fetches are observed."""

    def __init__(self, runtime: Runtime, sender: str) -> None:
        self._ctx: SyncContext = runtime.ctx
        self._runtime = runtime
        self.sender = sender

    def fetch_repository_data(self, identifier: str) -> RepositoryData:
        return self._ctx.fetch_repository_data(identifier)

    def collect_needed_oids(self, identifier: str) -> set[str]:
        return self._ctx.collect_needed_oids(identifier)

    def fetch_oids(self, repo_path: Path, url: str, oids: Sequence[str]) -> list[str]:
        started = time.monotonic()
        reason: str | None = None
        fetched: list[str] = []
        try:
            fetched = self._ctx.fetch_oids(repo_path, url, oids)
            return fetched
        except Exception as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise
        finally:
            self._runtime.observer.fetch_done(
                extract_domain(url) or "", time.monotonic() - started, len(fetched), reason
            )

    def process_satisfiable_events(self, identifier: str) -> ProcessResult:
        return self._runtime.ask(self.sender, "Releaser", ProcessSatisfiable(identifier))

    def has_pending_events(self, identifier: str) -> bool:
        return self._ctx.has_pending_events(identifier)

    def find_target_repo(self, data: RepositoryData) -> Path | None:
        return self._ctx.find_target_repo(data)

    def our_domain(self) -> str | None:
        return self._ctx.our_domain()

    def pending_identifiers(self) -> list[str]:
        return self._ctx.pending_identifiers()


class HeldSlot:
    """Throttle stand-in for the throttle path: the DomainThrottle reserved the slot already;
    when the request ends it hears ``SlotFreed`` at once, before any release work."""

    def __init__(self, runtime: Runtime, sender: str, identifier: str) -> None:
        self.runtime, self.sender, self.identifier = runtime, sender, identifier

    def is_throttled(self, domain: str) -> bool:
        return False

    def start_request(self, domain: str) -> bool:
        return True

    def complete_request(self, domain: str) -> None:
        self.runtime.tell(self.sender, throttle_name(domain), SlotFreed(self.identifier))

    def enqueue_identifier(self, domain: str, identifier: str, tried_urls: Iterable[str]) -> None:
        pass


class FetchActor(BaseActor):
    handlers = {SyncIdentifier: "on_sync", FetchFromDomain: "on_fetch_from_domain"}

    def on_sync(self, msg: SyncIdentifier, now: float) -> None:
        view = FetcherView(self.runtime, self.name)
        throttle = self.runtime.throttles.client(self.name, msg.identifier)
        complete = self._run(sync_identifier, view, msg.identifier, throttle)
        self.tell("Scheduler", SyncFinished(msg.identifier, complete is True))
        self.stop()

    def on_fetch_from_domain(self, msg: FetchFromDomain, now: float) -> None:
        view = FetcherView(self.runtime, self.name)
        url = self._run(
            _fetch_from_domain, view, msg.identifier, msg.domain, msg.tried_urls, self.runtime
        )
        self.tell(throttle_name(msg.domain), QueuedFetchDone(msg.identifier, url))
        self.stop()

    def on_stop(self) -> None:
        super().on_stop()
        self.runtime.fetch_actors.discard(self.actor_ref)

    def _run(self, fn: Any, *args: Any) -> Any:
        """Run the blocking work in a cancellable greenlet; errors are logged, never raised."""
        work = self.runtime.work.spawn(fn, *args)
        try:
            result = work.get()
        except Exception:
            logger.exception("%s: %s failed", self.name, getattr(fn, "__name__", fn))
            return None
        if isinstance(result, gevent.GreenletExit):
            logger.info("%s: cancelled by shutdown", self.name)
            return None
        return result


def _fetch_from_domain(
    view: FetcherView, identifier: str, domain: str, tried: frozenset[str], runtime: Runtime
) -> str | None:
    """The throttle path's unit of work (S6.3): one untried URL of ``domain``, or None."""
    throttle = runtime.throttles.client(view.sender)
    url = sync_identifier_next_url(view, identifier, domain, tried, throttle)
    if url is not None:
        sync_identifier_from_url(view, identifier, url, HeldSlot(runtime, view.sender, identifier))
    return url


def spawn_fetch(runtime: Runtime, sender: str, msg: Any) -> None:
    """Start a FetchActor for one unit of work and deliver it (the runtime's spawner)."""
    name = runtime.next_fetch_name()
    ref = FetchActor.start(runtime, name)
    runtime.fetch_actors.add(ref)
    runtime.tell(sender, ref, msg)


def stop_fetch_actors(runtime: Runtime, timeout: float) -> None:
    """Give running fetches ``timeout`` seconds, cancel the rest, then stop every FetchActor
    (each still reports, so no throttle slot or queue entry is left dangling)."""
    if not runtime.work.join(timeout=timeout):
        logger.info("cancelling %d running fetches", len(runtime.work))
        runtime.work.kill(block=True, timeout=timeout)
    for ref in list(runtime.fetch_actors):
        try:
            ref.stop(block=True, timeout=timeout)
        except pykka.Timeout:
            logger.error("%s did not stop within %.1f s", ref, timeout)
        runtime.fetch_actors.discard(ref)
