"""The shell every actor shares: typed dispatch, one clock read per message, traced inputs.

An actor here is a thin shell. :class:`BaseActor` takes an :class:`~actors.effects.Envelope`
out of the pykka inbox, reads the clock once, records the trace line, and hands
``(message, now)`` to the method registered for the message's type with :func:`handles`.
Methods call pure policy and perform the effects it returns through ``self.effects``. Each
actor's handled types equal its inbox union in ``messages/`` (a test checks it). Unknown
messages are a bug and are logged at WARNING (ARCHITECTURE §3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import pykka

from messages.lifecycle import ActorStarted, Ping, Reply
from messages.supervisor import ChildFailed

from .effects import Binder, Envelope
from .names import SUPERVISOR, SYSTEM, TIMER
from .runtime import GeventActor
from .services import Services
from .trace.recorder import NullTracer

logger = logging.getLogger(__name__)

__all__ = ["BaseActor", "handles"]

F = TypeVar("F", bound=Callable[..., Any])
_UNTRACED = NullTracer()


def handles(*types: type) -> Callable[[F], F]:
    """Register the decorated method as the handler of messages of ``types``."""

    def mark(method: F) -> F:
        method.__handles__ = types  # type: ignore[attr-defined]
        return method

    return mark


class BaseActor(GeventActor):
    """Dispatch by message type, one clock read per message, effects bound to a name."""

    _handlers: ClassVar[dict[type, Callable[..., Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[type, Callable[..., Any]] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                for msg_type in getattr(value, "__handles__", ()):
                    handlers[msg_type] = value
        cls._handlers = handlers

    @classmethod
    def handled_types(cls) -> frozenset[type]:
        """The message types this actor's inbox accepts (besides the universal ``Ping``)."""
        return frozenset(cls._handlers)

    def __init__(self, services: Services, bind: Binder, name: str) -> None:
        super().__init__()
        self.services = services
        self._clock, self._tracer = services.clock, services.tracer  # read once per message
        self.name = name
        self.effects = bind(name, self.actor_ref)
        self._current: Any = None
        self._dead = False

    def __str__(self) -> str:
        return self.name

    # -- pykka hooks ------------------------------------------------------------------------

    def on_start(self) -> None:
        tracer = self._tracer
        if tracer.enabled:  # untraced, no clock read and no message (one start per sync, P4)
            tracer.record(self._clock.now(), SYSTEM, self.name, ActorStarted())

    def on_receive(self, envelope: Any) -> Any:
        if not isinstance(envelope, Envelope):
            logger.warning("%s: unknown message %r dropped", self.name, envelope)
            return None
        if self._dead:
            return self._refuse(envelope)
        msg = envelope.message
        now = self._clock.now()
        tracer = self._tracer if envelope.traced else _UNTRACED
        if tracer.enabled:
            tracer.record(now, envelope.sender, self.name, msg)
        if envelope.sender == TIMER:
            self.effects.timer_delivered(msg)
        if isinstance(msg, Ping):
            result: Any = self.name
        else:
            handler = self._handlers.get(type(msg))
            if handler is None:
                logger.warning("%s: unknown message %r from %s", self.name, msg, envelope.sender)
                return None
            self._current = None if envelope.ask else msg
            try:
                result = handler(self, msg, now)
            except Exception as exc:
                if envelope.ask:
                    self._die_after_failed_ask(msg, exc)
                raise  # a tell: pykka stops the actor and calls on_failure
            self._current = None
        if envelope.ask and tracer.enabled:  # at the time of answering: handlers may block
            reply = Reply(type(msg).__name__, result)
            tracer.record(self._clock.now(), self.name, envelope.sender, reply)
        return result

    def _die_after_failed_ask(self, msg: Any, exc: Exception) -> None:
        """An ask's handler raised: the caller gets the exception (pykka), and the actor dies
        as it would after a tell, because its state may be half-changed — a TryStart whose
        grant never reached the caller would otherwise hold a slot forever."""
        logger.error("%s died answering %r: %r", self.name, msg, exc)
        self._dead = True
        self.effects.detach()
        self.effects.tell(SUPERVISOR, ChildFailed(self.name, repr(exc), None))
        self.effects.stop()

    def _refuse(self, envelope: Envelope) -> None:
        """What reaches a dead actor before its stop: asks fail as at a dead ref, tells drop."""
        if envelope.ask:
            raise pykka.ActorDeadError(f"{self.name} died")
        logger.debug("%s: dead, dropped %r", self.name, envelope.message)

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.effects.detach()
        logger.error("%s died handling %r: %r", self.name, self._current, exc)
        self.effects.tell(SUPERVISOR, ChildFailed(self.name, repr(exc), self._current))

    def on_stop(self) -> None:
        self.effects.detach()
