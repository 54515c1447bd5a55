"""The Releaser: the one writer of refs and events (S8.1).

MUST: be the only caller of ``ctx.process_satisfiable_events``, so pushes and syncs never race
on a repository; re-enqueue an identifier whose events still wait after a push.
MAY block on local disk work (copies, ref updates, SQLite); MUST NOT fetch from the network.
"""

from __future__ import annotations

import logging

from messages.releaser import EnqueuePending, GitDataArrived, ProcessResult, ProcessSatisfiable
from messages.scheduler import EnqueueSync

from .base import BaseActor, Runtime

logger = logging.getLogger(__name__)

__all__ = ["Releaser"]


class Releaser(BaseActor):
    handlers = {
        ProcessSatisfiable: "on_process",
        GitDataArrived: "on_git_data",
        EnqueuePending: "on_enqueue_pending",
    }

    def __init__(self, runtime: Runtime, name: str = "Releaser") -> None:
        super().__init__(runtime, name)

    def on_process(self, msg: ProcessSatisfiable, now: float) -> ProcessResult:
        return self._release(msg.identifier)

    def on_git_data(self, msg: GitDataArrived, now: float) -> None:
        self._release(msg.identifier)
        if self.runtime.ctx.has_pending_events(msg.identifier):
            # Events of other authors may still wait; a sooner attempt already queued stays.
            self.tell("Scheduler", EnqueueSync(msg.identifier, self.runtime.config.default_delay))

    def on_enqueue_pending(self, msg: EnqueuePending, now: float) -> None:
        identifiers = self.runtime.ctx.pending_identifiers()
        logger.info("re-queueing %d identifiers with held events", len(identifiers))
        delay = self.runtime.config.immediate_delay
        for identifier in identifiers:
            self.tell("Scheduler", EnqueueSync(identifier, delay))

    def _release(self, identifier: str) -> ProcessResult:
        result = self.runtime.ctx.process_satisfiable_events(identifier)
        self.runtime.observer.released(identifier, result)
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
