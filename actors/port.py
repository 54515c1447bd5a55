"""The port as one actor sees it: every answer recorded, releases routed to the Releaser.

:class:`TracedPort` wraps the system's :class:`~actors.context.SyncContext` for one actor and
records what each call returned as a ``PortAnswer`` trace line (when tracing is on), so a trace
holds every input an actor had and :mod:`actors.trace.replay` can replay FetchActors and the
Releaser too, not just the actors that decide from their inbox alone.

A fetch is timed here, with the actor's clock, and the times travel inside the answer
(``FetchResult.started``/``seconds``, or the same attributes of ``FetchFailed``): a time the
port already carries is kept. That is what lets replay hand a FetchActor the very times it saw
live (the replay port answers with the recorded ones), so the ``FetchAttempted`` it tells the
Scheduler replays exactly (S13.3, S18.1). The end of a fetch's transfer (the port's
``on_transfer_end``, when the domain's slot is freed) is recorded too, as a ``PortAnswer`` of
method ``transfer_ended`` before the fetch's own answer, so replay frees the slot at the same
point of the FetchActor's work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from messages.port import PortAnswer
from messages.releaser import ProcessResult, ProcessSatisfiable

from .context import FetchFailed, FetchResult, LedgerAnswer, RepositoryData, TransferEnd
from .effects import Effects
from .names import PORT, RELEASER
from .services import Services
from .urls import extract_domain

__all__ = ["TRANSFER_ENDED", "FetcherView", "TracedPort"]

T = TypeVar("T")

#: The ``PortAnswer.method`` that records a fetch's transfer end.
TRANSFER_ENDED = "transfer_ended"


class TracedPort:
    """A :class:`~actors.context.SyncContext` that records its answers for one actor."""

    # Slotted, like the views below: one per FetchActor, and every attribute read on the
    # port path (~10 calls per identifier) and every dict the collector scans counts (P4).
    __slots__ = ("_ctx", "_services", "_traced", "actor")

    def __init__(self, services: Services, actor: str) -> None:
        self._ctx = services.ctx
        self._services = services
        self._traced = services.tracer.enabled  # fixed for a system's life (Services is frozen)
        self.actor = actor

    def _record(self, method: str, value: Any = None, **failure: Any) -> None:
        """One ``PortAnswer`` line, at the time of answering."""
        answer = PortAnswer(method, value, **failure)
        self._services.tracer.record(self._services.clock.now(), self.actor, PORT, answer)

    def _call(
        self, method: str, call: Callable[..., T], encode: Callable[[T], Any], *args: Any
    ) -> T:
        """``call(*args)``, its answer or failure recorded when tracing is on. Untraced, the
        call is direct: no closure, no encoding (the port is called ~10 times per identifier,
        and the wrapping was ~5 % of the CPU per identifier through the actors)."""
        if not self._traced:
            return call(*args)
        try:
            value = call(*args)
        except FetchFailed as exc:
            self._record(
                method,
                failure=exc.reason,
                url=exc.url,
                detail=exc.detail,
                started=exc.started,
                seconds=exc.seconds,
            )
            raise
        except Exception as exc:
            self._record(method, error=repr(exc))
            raise
        self._record(method, encode(value))
        return value

    def fetch_repository_data(self, identifier: str) -> RepositoryData:
        ctx = self._ctx
        return self._call("fetch_repository_data", ctx.fetch_repository_data, _same, identifier)

    def collect_needed_oids(self, identifier: str) -> set[str]:
        return self._call("collect_needed_oids", self._ctx.collect_needed_oids, sorted, identifier)

    def fetch_oids(
        self,
        repo_path: Path,
        url: str,
        oids: Sequence[str],
        on_transfer_end: TransferEnd | None = None,
    ) -> FetchResult:
        ended = None if on_transfer_end is None else self._transfer_end(on_transfer_end)
        return self._call("fetch_oids", self._timed_fetch, _same, repo_path, url, oids, ended)

    def _transfer_end(self, on_transfer_end: TransferEnd) -> TransferEnd:
        """``on_transfer_end`` with its moment recorded first (replay calls it there too)."""

        if not self._traced:
            return on_transfer_end

        def ended() -> None:
            self._record(TRANSFER_ENDED)
            on_transfer_end()

        return ended

    def _timed_fetch(
        self, repo_path: Path, url: str, oids: Sequence[str], ended: TransferEnd | None
    ) -> FetchResult:
        """The port's fetch with ``started``/``seconds`` filled in from the actor's clock."""
        clock = self._services.clock
        started = clock.now()
        try:
            if ended is None:  # a port written before transfer ends existed works unchanged
                result = self._ctx.fetch_oids(repo_path, url, oids)
            else:
                result = self._ctx.fetch_oids(repo_path, url, oids, on_transfer_end=ended)
        except FetchFailed as exc:
            if exc.seconds is None:
                exc.started, exc.seconds = round(started, 6), round(clock.now() - started, 6)
            raise
        if result.seconds is None:  # built directly: ``dataclasses.replace`` measured 3.4 µs
            seconds = round(clock.now() - started, 6)
            result = FetchResult(
                result.oids, result.missing, result.pack_bytes, round(started, 6), seconds
            )
        return result

    def process_satisfiable_events(self, identifier: str) -> ProcessResult:
        ctx = self._ctx
        return self._call(
            "process_satisfiable_events", ctx.process_satisfiable_events, _same, identifier
        )

    def has_pending_events(self, identifier: str) -> bool:
        return self._call("has_pending_events", self._ctx.has_pending_events, bool, identifier)

    def find_target_repo(self, data: RepositoryData) -> Path | None:
        return self._call("find_target_repo", self._ctx.find_target_repo, _path_text, data)

    def our_domain(self) -> str | None:
        return self._call("our_domain", self._ctx.our_domain, _same)

    def pending_identifiers(self) -> list[str]:
        return self._call("pending_identifiers", self._ctx.pending_identifiers, list)

    def take_lease(self, identifier: str) -> bool:
        return self._call("take_lease", self._ctx.take_lease, bool, identifier)

    def release_lease(self, identifier: str) -> None:
        self._call("release_lease", self._ctx.release_lease, _same, identifier)

    def ledger_start(
        self, domain: str, max_concurrent: int, max_per_window: int, window: float
    ) -> LedgerAnswer:
        ctx = self._ctx
        return self._call(
            "ledger_start", ctx.ledger_start, _same, domain, max_concurrent, max_per_window, window
        )

    def ledger_done(self, domain: str, contacted: bool) -> None:
        self._call("ledger_done", self._ctx.ledger_done, _same, domain, contacted)


class FetcherView(TracedPort):
    """The port as a FetchActor sees it: releases are asks to the Releaser (S8.1: the single
    writer), and every fetch is reported to the observer with its duration and outcome."""

    __slots__ = ("_effects", "release_failed")

    def __init__(self, services: Services, effects: Effects) -> None:
        super().__init__(services, effects.name)
        self._effects = effects
        #: Whether the last release pass this view awaited reported errors (S5.3's deviation).
        self.release_failed = False

    def fetch_oids(
        self,
        repo_path: Path,
        url: str,
        oids: Sequence[str],
        on_transfer_end: TransferEnd | None = None,
    ) -> FetchResult:
        domain, observer = extract_domain(url) or "", self._services.observer
        try:
            result = super().fetch_oids(repo_path, url, oids, on_transfer_end)
        except FetchFailed as exc:
            observer.fetch_done(domain, exc.seconds or 0.0, 0, exc.reason)
            raise
        except Exception as exc:
            observer.fetch_done(domain, float("nan"), 0, type(exc).__name__)  # not timed
            raise
        if not result.nothing_absent:  # else no request was made: no fetch to count
            observer.fetch_done(domain, result.seconds or 0.0, len(result.oids), None)
        return result

    def process_satisfiable_events(self, identifier: str) -> ProcessResult:
        result: ProcessResult = self._effects.ask(RELEASER, ProcessSatisfiable(identifier))
        self.release_failed = bool(result.errors)
        return result

    def release_soon(self, identifier: str) -> None:
        """Have the Releaser release what is satisfiable now, without waiting for it: a tell,
        queued before any later ask of this actor's, so the Releaser's order is kept."""
        self._effects.tell(RELEASER, ProcessSatisfiable(identifier))


def _same(value: Any) -> Any:
    return value


def _path_text(value: Path | None) -> str | None:
    return None if value is None else str(value)
