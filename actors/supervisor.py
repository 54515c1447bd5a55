"""The Supervisor: restarts children that die, with backoff, and drops poison messages.

pykka has no supervision. Every actor's ``on_failure`` tells the Supervisor ``ChildFailed``
with the message it died on; the Supervisor waits the policy's backoff, restarts the child
through its factory, redelivers the message once (a second death makes it poison, logged and
dropped), and after a Scheduler or DomainThrottle restart asks the Releaser to re-enqueue every
identifier that still has held events — the purgatory store is the source of truth, the sync
queue and the domain queues are not.
FetchActors are not restarted: their work reports its own end and is retried by the queue.
"""

from __future__ import annotations

import logging
from typing import Any

from messages.releaser import EnqueuePending
from messages.supervisor import ChildFailed, RestartChild, Shutdown

from .base import BaseActor, Runtime
from .supervision import RestartPolicy

logger = logging.getLogger(__name__)

__all__ = ["Supervisor"]


class Supervisor(BaseActor):
    handlers = {ChildFailed: "on_child_failed", RestartChild: "on_restart", Shutdown: "on_shutdown"}

    def __init__(self, runtime: Runtime, name: str = "Supervisor") -> None:
        super().__init__(runtime, name)
        config = runtime.config
        self.policy = RestartPolicy(config.restart_backoff_min, config.restart_backoff_max)
        self.redeliver: dict[str, Any] = {}
        self.shutting_down = False

    def on_child_failed(self, msg: ChildFailed, now: float) -> None:
        if self.shutting_down or msg.child not in self.runtime.factories:
            logger.warning("%s failed (%s); not restarted", msg.child, msg.error)
            return
        decision = self.policy.on_failure(msg.child, msg.message, now)
        if msg.message is not None and not decision.redeliver:
            logger.error("poison message dropped: %r killed %s twice", msg.message, msg.child)
        self.redeliver[msg.child] = msg.message if decision.redeliver else None
        logger.warning("%s failed (%s); restarting in %.2f s", msg.child, msg.error, decision.delay)
        self.arm(f"restart:{msg.child}", now + decision.delay, RestartChild(msg.child), now)

    def on_restart(self, msg: RestartChild, now: float) -> None:
        if self.shutting_down:
            return
        ref = self.runtime.factories[msg.child]()
        logger.info("restarted %s", msg.child)
        pending = self.redeliver.pop(msg.child, None)
        if pending is not None:
            self.tell(ref, pending)
        if msg.child == "Scheduler" or msg.child.startswith("DomainThrottle["):
            self.tell("Releaser", EnqueuePending())

    def on_shutdown(self, msg: Shutdown, now: float) -> None:
        self.shutting_down = True
        self.cancel_timers()

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        logger.critical("the Supervisor itself died: %r; no more restarts", exc)
