"""pykka's actor contract on gevent's own primitives: the runtime every actor here runs on.

The relay is one gevent hub (ARCHITECTURE §1), so ``pykka.ThreadingActor`` runs on
monkey-patched threads anyway — but through the pure-Python layers of :mod:`threading`: every
``ask`` built a ``threading.Condition`` (a gevent lock plus a waiter lock per wait) and every
actor start a ``threading.Thread`` (a bookkeeping object, a started-event handshake and a
switch). Profiled in ``scripts/bench/scheduler.py`` (issue 16, goal P4) those layers were the
largest share of the CPU per identifier. :class:`GeventActor` keeps pykka's ``Actor`` (its
loop, registry, stop and failure semantics are unchanged) and swaps only the three
runtime hooks: the inbox is gevent's C queue (what ``queue.Queue`` already is once patched),
a future is one gevent ``Event`` (C) plus the value, and the loop is a plain greenlet.

Nothing here is thread-safe across native threads, and nothing needs to be: no actor is
reached from gevent's thread pool (the pool only runs dulwich work and returns to the hub).
"""

from __future__ import annotations

import itertools
import queue
import sys
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import gevent
import gevent.event
import gevent.queue
import pykka

if TYPE_CHECKING:
    from pykka._actor import ActorInbox
    from pykka._future import GetHookFunc
    from pykka._types import OptExcInfo

__all__ = ["GeventActor", "GeventFuture"]

T = TypeVar("T")

#: Actor URNs: one random UUID prefix per process, then a counter — unique like pykka's
#: ``uuid4()`` per actor, without its ``os.urandom`` call (4 µs, once per FetchActor).
_URN_PREFIX = uuid.uuid4().urn[:-12]
_urn_numbers = itertools.count(1)

#: Idle loop carriers kept for the next actor start (a FetchActor starts per unit of work).
MAX_IDLE_CARRIERS = 256


class GeventFuture(pykka.Future[T]):
    """A pykka future whose waiting is one gevent ``Event``: set once, read many times."""

    __slots__ = ("_event", "_value", "_exc_info")

    def __init__(self) -> None:
        super().__init__()
        self._event = gevent.event.Event()
        self._value: Any = None
        self._exc_info: OptExcInfo | None = None

    def get(self, *, timeout: float | None = None) -> Any:
        if self._get_hook is None and not self._event.is_set():
            if not self._event.wait(timeout):
                raise pykka.Timeout(f"{timeout} seconds")
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        if self._exc_info is not None:
            exc_type, exc_value, exc_traceback = self._exc_info
            assert exc_type is not None
            if exc_value is None:
                exc_value = exc_type()
            if exc_value.__traceback__ is not exc_traceback:
                raise exc_value.with_traceback(exc_traceback)
            raise exc_value
        return self._value

    def set(self, value: Any | None = None) -> None:
        if self._event.is_set() or self._get_hook is not None:
            raise queue.Full  # pykka's contract: a future is set once
        self._value = value
        self._event.set()

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        if exc_info is None:
            exc_info = sys.exc_info()
        if self._event.is_set() or self._get_hook is not None:
            raise queue.Full
        self._exc_info = exc_info
        self._event.set()

    def set_get_hook(self, func: GetHookFunc[T]) -> None:
        if self._event.is_set():
            raise queue.Full
        super().set_get_hook(func)
        self._event.set()  # a waiter wakes and runs the hook


class _Carriers:
    """Greenlets that run actor loops one after another: a greenlet's creation measured 14 µs
    here, handing a loop to an idle one is a queue put. Each idle carrier is reserved by the
    start that hands it a loop (``idle`` counts unreserved ones), so a loop never waits for a
    busy carrier to finish (which could wait on it in turn)."""

    def __init__(self) -> None:
        self.idle = 0
        self.jobs: gevent.queue.SimpleQueue[Callable[[], None]] = gevent.queue.SimpleQueue()

    def start(self, loop: Callable[[], None]) -> None:
        if self.idle > 0:
            self.idle -= 1
            self.jobs.put(loop)
        else:
            gevent.spawn(self._carry, loop)

    def _carry(self, loop: Callable[[], None]) -> None:
        while True:
            loop()
            if self.idle >= MAX_IDLE_CARRIERS:
                return
            self.idle += 1
            loop = self.jobs.get()


_CARRIERS = _Carriers()


class GeventActor(pykka.Actor):
    """A pykka actor whose inbox, futures and loop are gevent's (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # pykka's Actor.__init__, with a cheaper URN (see _URN_PREFIX); pykka asks a subclass
        # to set exactly these fields.
        self.actor_urn = f"{_URN_PREFIX}{next(_urn_numbers):012x}"
        self.actor_inbox = self._create_actor_inbox()
        self.actor_stopped = threading.Event()
        self._actor_ref = pykka.ActorRef(self)

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        inbox: ActorInbox = gevent.queue.SimpleQueue()
        return inbox

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return GeventFuture()

    def _start_actor_loop(self) -> None:
        _CARRIERS.start(self._actor_loop)
