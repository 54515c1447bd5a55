"""The Supervisor: restarts children that die, with backoff, and drops poison messages.

pykka has no supervision. Every actor's ``on_failure`` tells the Supervisor ``ChildFailed``
with the message it died on; the Supervisor waits the policy's backoff, restarts the child
under its name, redelivers the message once (a second death makes it poison, logged and
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

from .base import BaseActor, handles
from .effects import Binder
from .names import RELEASER, SUPERVISOR
from .services import Services
from .supervision import RestartPolicy, rebuilds_queues, restartable

logger = logging.getLogger(__name__)

__all__ = ["Supervisor"]


class Supervisor(BaseActor):
    def __init__(self, services: Services, bind: Binder) -> None:
        super().__init__(services, bind, SUPERVISOR)
        config = services.config
        self.policy = RestartPolicy(config.restart_backoff_min, config.restart_backoff_max)
        self.redeliver: dict[str, Any] = {}
        self.shutting_down = False

    @handles(ChildFailed)
    def on_child_failed(self, msg: ChildFailed, now: float) -> None:
        if self.shutting_down or not restartable(msg.child):
            logger.warning("%s failed (%s); not restarted", msg.child, msg.error)
            return
        decision = self.policy.on_failure(msg.child, msg.message, now)
        if msg.message is not None and not decision.redeliver:
            logger.error("poison message dropped: %r killed %s twice", msg.message, msg.child)
        self.redeliver[msg.child] = msg.message if decision.redeliver else None
        logger.warning("%s failed (%s); restarting in %.2f s", msg.child, msg.error, decision.delay)
        self.effects.arm(f"restart:{msg.child}", now + decision.delay, RestartChild(msg.child))

    @handles(RestartChild)
    def on_restart(self, msg: RestartChild, now: float) -> None:
        if self.shutting_down:
            return
        if not self.effects.restart(msg.child):
            logger.error("%s cannot be restarted: no factory", msg.child)
            return
        logger.info("restarted %s", msg.child)
        pending = self.redeliver.pop(msg.child, None)
        if pending is not None:
            self.effects.tell(msg.child, pending)
        if rebuilds_queues(msg.child):
            self.effects.tell(RELEASER, EnqueuePending())

    @handles(Shutdown)
    def on_shutdown(self, msg: Shutdown, now: float) -> None:
        self.shutting_down = True
        self.effects.cancel_timers()

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.effects.detach()
        logger.critical("the Supervisor itself died: %r; no more restarts", exc)
