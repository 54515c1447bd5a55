"""The plumbing every actor shares: envelopes, the runtime directory, timers, tracing.

An actor here is a thin shell. :class:`BaseActor` takes an :class:`Envelope` out of the pykka
inbox, reads the clock once, records the trace line, and hands ``(message, now)`` to the
handler registered for the message type. Handlers call pure policy and perform the effects it
returns. Unknown messages are a bug and are logged at WARNING (ARCHITECTURE §3).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import gevent.pool
import pykka

from messages.lifecycle import ActorStarted, Ping, Reply
from messages.supervisor import ChildFailed

from .clock import Clock, TimerHandle
from .config import SyncConfig
from .context import SyncContext
from .observer import SyncObserver
from .tracing import NullTracer, Tracer

logger = logging.getLogger(__name__)

__all__ = ["BaseActor", "Envelope", "Runtime"]

_UNTRACED = NullTracer()


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message plus who sent it (for traces) and whether the sender waits for an answer.

    ``traced=False`` keeps test instrumentation (barrier pings) out of message traces.
    """

    sender: str
    message: Any
    ask: bool = False
    traced: bool = True


class Runtime:
    """What all actors of one system share: port, config, clock, tracer, observer, directory.

    The directory maps actor names ("Scheduler", "Releaser", "Supervisor",
    "DomainThrottle[host]") to their current refs, so a restarted actor is found by name and
    messages never go to a ref that the Supervisor has replaced.
    """

    def __init__(
        self,
        ctx: SyncContext,
        config: SyncConfig,
        clock: Clock,
        tracer: Tracer | None = None,
        observer: SyncObserver | None = None,
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.clock = clock
        self.tracer: Tracer = tracer or NullTracer()
        self.observer = observer or SyncObserver()
        self.refs: dict[str, pykka.ActorRef] = {}
        self.factories: dict[str, Callable[[], pykka.ActorRef]] = {}
        self.work = gevent.pool.Group()  # the blocking part of every FetchActor
        self.fetch_actors: set[pykka.ActorRef] = set()
        self._fetch_numbers = itertools.count(1)
        self.spawn_fetch: Callable[[str, Any], None] = self._no_spawner
        self.throttles: Any = None  # the ThrottleRouter, installed by actors.system

    # -- directory ----------------------------------------------------------------------------

    def register(self, name: str, ref: pykka.ActorRef) -> None:
        self.refs[name] = ref

    def resolve(self, target: str | pykka.ActorRef) -> pykka.ActorRef | None:
        return self.refs.get(target) if isinstance(target, str) else target

    def next_fetch_name(self) -> str:
        return f"FetchActor-{next(self._fetch_numbers)}"

    def _no_spawner(self, sender: str, msg: Any) -> None:
        raise RuntimeError("no FetchActor spawner installed")

    # -- messaging ----------------------------------------------------------------------------

    def tell(self, sender: str, target: str | pykka.ActorRef, msg: Any) -> bool:
        """Deliver ``msg``; False (logged) when the target is gone, e.g. being restarted."""
        ref = self.resolve(target)
        if ref is None:
            logger.debug("%s: no actor %s for %s", sender, target, type(msg).__name__)
            return False
        try:
            ref.tell(Envelope(sender, msg))
        except pykka.ActorDeadError:
            logger.debug("%s: %s is dead, dropped %s", sender, target, type(msg).__name__)
            return False
        return True

    def ask(
        self, sender: str, target: str | pykka.ActorRef, msg: Any, timeout: float | None = None
    ) -> Any:
        """Ask downward only (ARCHITECTURE §3); raises ``ActorDeadError`` if the target is gone."""
        ref = self.resolve(target)
        if ref is None:
            raise pykka.ActorDeadError(f"no actor {target}")
        return ref.ask(Envelope(sender, msg, ask=True), timeout=timeout)

    def timer_fire(self, ref: pykka.ActorRef, msg: Any) -> None:
        """A timer's delivery: a no-op when the actor died meanwhile (never a stray traceback)."""
        try:
            ref.tell(Envelope("timer", msg))
        except pykka.ActorDeadError:
            pass

    def child_failed(self, name: str, exc: BaseException | None, message: Any) -> None:
        self.tell(name, "Supervisor", ChildFailed(name, repr(exc), message))


class BaseActor(pykka.ThreadingActor):
    """Dispatch by message type, one clock read per message, timers that die with the actor."""

    handlers: ClassVar[dict[type, str]] = {}

    def __init__(self, runtime: Runtime, name: str) -> None:
        super().__init__()
        self.runtime = runtime
        self.name = name
        self._timers: dict[str, tuple[float, TimerHandle, Any]] = {}
        self._current: Any = None

    def __str__(self) -> str:
        return self.name

    # -- pykka hooks ------------------------------------------------------------------------

    def on_start(self) -> None:
        self.runtime.tracer.record(self.runtime.clock.now(), "system", self.name, ActorStarted())

    def on_receive(self, envelope: Any) -> Any:
        if not isinstance(envelope, Envelope):
            logger.warning("%s: unknown message %r dropped", self.name, envelope)
            return None
        msg = envelope.message
        now = self.runtime.clock.now()
        tracer = self.runtime.tracer if envelope.traced else _UNTRACED
        tracer.record(now, envelope.sender, self.name, msg)
        if envelope.sender == "timer":
            self._forget_timer(msg)
        if isinstance(msg, Ping):
            result: Any = self.name
        else:
            method = self.handlers.get(type(msg))
            if method is None:
                logger.warning("%s: unknown message %r from %s", self.name, msg, envelope.sender)
                return None
            self._current = None if envelope.ask else msg
            result = getattr(self, method)(msg, now)
            self._current = None
        if envelope.ask and tracer.enabled:
            tracer.record(now, self.name, envelope.sender, Reply(type(msg).__name__, result))
        return result

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.cancel_timers()
        logger.error("%s died handling %r: %r", self.name, self._current, exc)
        self.runtime.child_failed(self.name, exc, self._current)

    def on_stop(self) -> None:
        self.cancel_timers()

    # -- effects ----------------------------------------------------------------------------

    def tell(self, target: str | pykka.ActorRef, msg: Any) -> bool:
        return self.runtime.tell(self.name, target, msg)

    def arm(self, key: str, due: float, msg: Any, now: float) -> None:
        """Deliver ``msg`` to self at ``due``; one timer per key, re-armed only if ``due`` moved."""
        current = self._timers.get(key)
        if current is not None:
            if current[0] == due:
                return
            current[1].cancel()
        ref = self.actor_ref
        handle = self.runtime.clock.call_at(due, lambda: self.runtime.timer_fire(ref, msg))
        self._timers[key] = (due, handle, msg)

    def disarm(self, key: str) -> None:
        current = self._timers.pop(key, None)
        if current is not None:
            current[1].cancel()

    def _forget_timer(self, msg: Any) -> None:
        """A timer message arrived: its slot is free (matched by identity, so a re-armed
        timer of the same key is kept)."""
        for key, (_, _, armed) in list(self._timers.items()):
            if armed is msg:
                del self._timers[key]

    def cancel_timers(self) -> None:
        for _, handle, _ in self._timers.values():
            handle.cancel()
        self._timers.clear()
