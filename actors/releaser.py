"""The Releaser: the one writer of refs and events (S8.1).

MUST: be the only caller of ``ctx.process_satisfiable_events``, so pushes and syncs never race
on a repository; re-enqueue an identifier whose events still wait after a push.
MAY block on local disk work (copies, ref updates, SQLite); MUST NOT fetch from the network.
Every port answer it gets is recorded in the trace, so a trace of it replays.
"""

from __future__ import annotations

import logging

from messages.releaser import EnqueuePending, GitDataArrived, ProcessResult, ProcessSatisfiable
from messages.scheduler import EnqueueSync

from .base import BaseActor, handles
from .effects import Binder
from .names import RELEASER, SCHEDULER
from .port import TracedPort
from .services import Services

logger = logging.getLogger(__name__)

__all__ = ["Releaser"]


class Releaser(BaseActor):
    def __init__(self, services: Services, bind: Binder) -> None:
        super().__init__(services, bind, RELEASER)
        self.port = TracedPort(services, RELEASER)

    @handles(ProcessSatisfiable)
    def on_process(self, msg: ProcessSatisfiable, now: float) -> ProcessResult:
        return self._release(msg.identifier)

    @handles(GitDataArrived)
    def on_git_data(self, msg: GitDataArrived, now: float) -> None:
        self._release(msg.identifier)
        if self.port.has_pending_events(msg.identifier):
            # Events of other authors may still wait (their pushes may follow); a sooner
            # attempt already queued stays.
            self.effects.tell(SCHEDULER, EnqueueSync(msg.identifier, "user"))

    @handles(EnqueuePending)
    def on_enqueue_pending(self, msg: EnqueuePending, now: float) -> None:
        identifiers = self.port.pending_identifiers()
        logger.info("re-queueing %d identifiers with held events", len(identifiers))
        for identifier in identifiers:
            self.effects.tell(SCHEDULER, EnqueueSync(identifier, "restart", if_absent=msg.adopt))

    def _release(self, identifier: str) -> ProcessResult:
        result = self.port.process_satisfiable_events(identifier)
        self.services.observer.released(identifier, result)
        if result.released_any:
            logger.info(
                "released %s: %d states, %d PRs, %d repos synced",
                identifier,
                result.states_released,
                result.prs_released,
                result.repos_synced,
            )
        for error in result.errors:
            logger.warning("releasing %s: %s", identifier, error)
        return result
