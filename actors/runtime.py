"""pykka's actor contract on gevent's own primitives: the runtime every actor here runs on.

The relay is one gevent hub (ARCHITECTURE §1), so ``pykka.ThreadingActor`` runs on
monkey-patched threads anyway — but through the pure-Python layers of :mod:`threading`: every
``ask`` built a ``threading.Condition`` (a gevent lock plus a waiter lock per wait) and every
actor start a ``threading.Thread`` (a bookkeeping object, a started-event handshake and a
switch). Profiled in ``scripts/bench/scheduler.py`` (issue 16, goal P4) those layers were the
largest share of the CPU per identifier. :class:`GeventActor` keeps pykka's ``Actor`` (its
loop, registry, stop and failure semantics are unchanged) and swaps only the three
runtime hooks: the inbox is a deque with its one reader's gevent ``Waiter``, a future is the
value plus the ``Waiter`` of each reader (the cheapest wake-up gevent has: one hub callback),
and the loop runs on a reused greenlet.

Nothing here is thread-safe across native threads, and nothing needs to be: no actor is
reached from gevent's thread pool (the pool only runs dulwich work and returns to the hub).
"""

from __future__ import annotations

import collections
import gc
import itertools
import logging
import queue
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import gevent
import gevent.event
import gevent.queue
import greenlet  # type: ignore[import-untyped]  # no stubs; gevent depends on it
import pykka
from gevent.hub import Waiter
from pykka._envelope import Envelope as _PykkaEnvelope
from pykka.messages import _ActorStop

from .effects import Envelope

if TYPE_CHECKING:
    from typing import Self

    from pykka._actor import ActorInbox
    from pykka._future import GetHookFunc
    from pykka._types import OptExcInfo

logger = logging.getLogger(__name__)

__all__ = [
    "GC_YOUNG_THRESHOLD",
    "GeventActor",
    "GeventFuture",
    "tell_bare",
    "tune_gc",
    "unregistered_alive",
]

T = TypeVar("T")

#: Actor URNs: one random UUID prefix per process, then a counter — unique like pykka's
#: ``uuid4()`` per actor, without its ``os.urandom`` call (4 µs, once per FetchActor).
_URN_PREFIX = uuid.uuid4().urn[:-12]
_urn_numbers = itertools.count(1)

#: Idle loop carriers kept for the next actor start (a FetchActor starts per unit of work).
MAX_IDLE_CARRIERS = 256


class GeventFuture(pykka.Future[T]):
    """A pykka future: set once, read many times; a reader waits on a gevent ``Waiter``.

    A ``Waiter`` is gevent's cheapest wake-up, one hub callback: ``Event.set`` measured
    7.7 µs per wake here (a callback that schedules the waiter's), a ``Waiter`` 3.3 µs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._done = False
        self._waiters: list[Waiter[Any]] | None = None
        self._value: Any = None
        self._exc_info: OptExcInfo | None = None

    def get(self, *, timeout: float | None = None) -> Any:
        if self._get_hook is None and not self._done:
            self._wait(timeout)
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

    def _wait(self, timeout: float | None) -> None:
        waiter: Waiter[Any] = Waiter()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        timer = None if timeout is None else gevent.Timeout.start_new(timeout)
        try:
            waiter.get()
        except gevent.Timeout as exc:
            if exc is not timer:
                raise  # someone else's timeout
            raise pykka.Timeout(f"{timeout} seconds") from None
        finally:
            if timer is not None:
                timer.close()
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake(self) -> None:
        """Wake every reader (from the hub: a late one that gave up just keeps the value)."""
        self._done = True
        waiters, self._waiters = self._waiters, None
        if waiters:
            loop = gevent.get_hub().loop
            for waiter in waiters:
                loop.run_callback(waiter.switch, None)

    def set(self, value: Any | None = None) -> None:
        if self._done or self._get_hook is not None:
            raise queue.Full  # pykka's contract: a future is set once
        self._value = value
        self._wake()

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        if exc_info is None:
            exc_info = sys.exc_info()
        if self._done or self._get_hook is not None:
            raise queue.Full
        self._exc_info = exc_info
        self._wake()

    def set_get_hook(self, func: GetHookFunc[T]) -> None:
        if self._done:
            raise queue.Full
        super().set_get_hook(func)
        self._wake()  # a waiting reader wakes and runs the hook


class _StopFlag:
    """pykka's ``actor_stopped``: it only sets and reads it (``ActorRef.is_alive``). A
    ``threading.Event`` is a Condition and two locks, built per actor start (a FetchActor
    per unit of work): 0.7 µs and five objects the collector scans while the actor lives.
    ``wait`` builds a gevent event only for a caller that waits."""

    __slots__ = ("_set", "_event")

    def __init__(self) -> None:
        self._set = False
        self._event: gevent.event.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        if self._event is not None:
            self._event.set()

    def clear(self) -> None:
        self._set = False
        if self._event is not None:
            self._event.clear()

    def wait(self, timeout: float | None = None) -> bool:
        if self._set:
            return True
        if self._event is None:
            self._event = gevent.event.Event()
        return bool(self._event.wait(timeout))


class _Inbox:
    """An actor's inbox: a deque and its one reader's ``Waiter`` (the actor's own loop is the
    only reader; senders only put). gevent's queues wake a reader through an extra callback,
    like ``Event`` (7.5 µs per wake measured, against 3.3 µs)."""

    __slots__ = ("_items", "_waiter", "_loop", "current", "stop_next")

    def __init__(self) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._waiter: Waiter[Any] | None = None
        self._loop = gevent.get_hub().loop
        self.current: Any = None  # the envelope last taken: the one being handled
        self.stop_next = False  # the loop stops before taking another message (stop_self)

    def stop_when_done(self) -> bool:
        """Have the loop stop once the message it is on is handled, as a stop envelope put
        now would, when nothing is queued and the loop is not waiting (so it is running: a
        handler, ``on_start``, or not started yet); else False, and the caller puts one."""
        if self._items or self._waiter is not None:
            return False
        self.stop_next = True
        return True

    def put(self, item: Any, /) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            self._loop.run_callback(waiter.switch, None)

    def get(self) -> Any:
        items = self._items
        while not items:
            if self._waiter is not None:
                raise RuntimeError("an actor inbox has one reader, its actor")
            waiter: Waiter[Any] = Waiter()
            self._waiter = waiter
            try:
                waiter.get()
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        self.current = item = items.popleft()
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class _Carriers:
    """Greenlets that run actor loops one after another: a greenlet's creation measured 14 µs
    here, handing a loop to an idle one is a queue put. Each idle carrier is reserved by the
    start that hands it a loop (``idle`` counts unreserved ones), so a loop never waits for a
    busy carrier to finish (which could wait on it in turn).

    A new carrier is a plain ``greenlet`` whose parent is the hub, started by a hub callback,
    not a ``gevent.Greenlet``: 2.9 µs against 10.8 µs for ``gevent.spawn`` (which records the
    spawning tree and stack, and keeps links nobody here uses); the benchmark's burst starts
    2,000 FetchActors at once, each on a new carrier (~8 % of the CPU per identifier, P4).
    gevent's waits, timeouts and ``gevent.kill`` work on plain greenlets; what a loop lets
    escape (nothing does but a ``BaseException``: pykka's loop handles the rest) ends only
    its carrier, a ``GreenletExit`` silently, anything else reported by the hub."""

    def __init__(self) -> None:
        self.idle = 0
        self.jobs: gevent.queue.SimpleQueue[Callable[[], bool]] = gevent.queue.SimpleQueue()

    def start(self, loop: Callable[[], bool]) -> None:
        if self.idle > 0:
            self.idle -= 1
            self.jobs.put(loop)
        else:
            self._new(loop)

    def _new(self, loop: Callable[[], bool] | None) -> None:
        hub = gevent.get_hub()
        carrier = greenlet.greenlet(self._carry, parent=hub)
        hub.loop.run_callback(carrier.switch, loop)  # an argument, not kept by the greenlet

    def _carry(self, loop: Callable[[], bool] | None) -> None:
        """Run loops until one says its carrier must end (it was killed) or enough are idle.
        An idle carrier holds no loop: a finished actor is not kept alive by its carrier.
        A carrier killed while idle (``gevent.killall``) takes no loop with it: it leaves a
        replacement, which starts idle (``loop`` None) and inherits its count in ``idle``,
        since a start may already have reserved it."""
        while True:
            if loop is not None:
                if not loop():
                    return
                loop = None
                if self.idle >= MAX_IDLE_CARRIERS:
                    return
                self.idle += 1
            try:
                loop = self.jobs.get()
            except BaseException:
                self._new(None)
                raise


_CARRIERS = _Carriers()


#: Running actors of the classes kept out of pykka's registry (``GeventActor.registered``).
_UNREGISTERED: dict[str, pykka.ActorRef[Any]] = {}


#: The young generation's collection threshold while an actor system runs (CPython's is 700).
#: Measured in ``scripts/bench/scheduler.py`` (P4): at 700 the collector ran ~230 times per
#: 2,000 identifiers and freed almost nothing (the actors' objects are freed by reference
#: counting; only their number is scanned), 15-20 % of the CPU per identifier; at 5,000 the
#: same run cost 14 % less CPU, and 20,000 or 50,000 gained nothing more. The older
#: generations keep their thresholds, so cyclic garbage is still collected, only in larger
#: batches (5,000 container allocations instead of 700 between young collections).
GC_YOUNG_THRESHOLD = 5000


def tune_gc() -> None:
    """Raise the collector's young threshold to :data:`GC_YOUNG_THRESHOLD`; never lower one
    a host process chose (nor enable a collector it disabled). Process-wide: called once
    per actor system start (:func:`actors.system.start`)."""
    young, *older = gc.get_threshold()
    if young != 0 and young < GC_YOUNG_THRESHOLD:  # 0: the host disabled collection
        gc.set_threshold(GC_YOUNG_THRESHOLD, *older)


def tell_bare(ref: pykka.ActorRef[Any], envelope: Envelope) -> None:
    """Queue a tell to an actor that a caller saw alive (nothing yielded since): bare when
    its loop is :class:`GeventActor`'s, which takes an :class:`~actors.effects.Envelope`
    as it is, else wrapped as pykka's ``ActorRef.tell`` wraps it."""
    inbox = ref.actor_inbox
    if type(inbox) is _Inbox:
        inbox.put(envelope)
    else:
        inbox.put(_PykkaEnvelope(envelope))


def stop_self(ref: pykka.ActorRef[Any]) -> None:
    """pykka's stop tell, from the actor itself (``Actor.stop``): queued behind what its inbox
    holds. With an empty inbox the loop just ends after the current message, without the
    stop envelope's put, get and dispatch (a FetchActor stops itself once per unit of work,
    P4); what arrives meanwhile is handled by the teardown as if queued behind the stop."""
    inbox = ref.actor_inbox
    if type(inbox) is _Inbox and inbox.stop_when_done():
        return
    ref.tell(_ActorStop())


def unregistered_alive() -> list[pykka.ActorRef[Any]]:
    """Running actors that ``pykka.ActorRegistry`` does not list (for leftover checks)."""
    return [ref for ref in _UNREGISTERED.values() if ref.is_alive()]


class GeventActor(pykka.Actor):
    """A pykka actor whose inbox, futures and loop are gevent's (see the module docstring)."""

    #: False for actors started per unit of work (FetchActors). pykka's registry is a list:
    #: ``register`` appends and ``unregister`` scans it, so with N such actors running every
    #: stop cost O(N) — 15 % of the CPU per identifier with 2,000 running (``scripts/bench/
    #: scheduler.py``). Those are kept in a dict here instead (:func:`unregistered_alive`);
    #: their system's Directory names them and stops them (``SyncSystem.stop``).
    registered: ClassVar[bool] = True

    _first: Envelope | None = None  # the tell handed over at start (start_with)

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> pykka.ActorRef[Self]:
        if cls.registered:
            return super().start(*args, **kwargs)
        return cls._launch(None, args, kwargs)

    @classmethod
    def start_with(cls, first: Envelope, *args: Any, **kwargs: Any) -> pykka.ActorRef[Self]:
        """``start`` and then tell ``first``, in one step: the loop handles ``first`` (after
        ``on_start``) before it takes anything from the inbox, as if it had been queued first,
        with no inbox put and get (a FetchActor is started for exactly one message, P4)."""
        return cls._launch(first, args, kwargs)

    @classmethod
    def _launch(
        cls, first: Envelope | None, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> pykka.ActorRef[Self]:
        """pykka's ``Actor.start`` (construct, register, start the loop) with ``first`` handed
        over, and an unregistered class kept in ``_UNREGISTERED`` instead of pykka's list."""
        obj = cls(*args, **kwargs)
        obj._first = first
        if cls.registered:
            pykka.ActorRegistry.register(obj.actor_ref)
        else:
            _UNREGISTERED[obj.actor_urn] = obj.actor_ref
        obj._start_actor_loop()
        return obj.actor_ref

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # pykka's Actor.__init__, with a cheaper URN (see _URN_PREFIX); pykka asks a subclass
        # to set exactly these fields.
        self.actor_urn = f"{_URN_PREFIX}{next(_urn_numbers):012x}"
        self.actor_inbox = self._create_actor_inbox()
        self.actor_stopped = _StopFlag()  # type: ignore[assignment]  # duck-typed Event
        self._actor_ref = pykka.ActorRef(self)

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        return _Inbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return GeventFuture()

    def _start_actor_loop(self) -> None:
        self._killed = False
        _CARRIERS.start(self._carried_loop)

    def _carried_loop(self) -> bool:
        """pykka's loop on a carrier; True when the carrier may carry the next actor's.

        A ``BaseException`` (``GreenletExit`` of ``gevent.kill``) thrown while the actor waits
        for a message reaches here, outside pykka's handling: the actor is stopped as pykka
        stops it after one in a handler, so it is not left alive with no loop (every later
        ask would wait forever), and the carrier ends as its killer expects. One thrown into
        a handler pykka handles itself (it stops every actor) and swallows: the carrier still
        ends (``_killed``, set by :meth:`_handle_receive`), not parked for the next actor.
        """
        try:
            self._actor_loop()
        except BaseException:
            self._killed = True
            if not self.actor_stopped.is_set():
                self._stop()
            self._actor_loop_teardown()  # queued asks fail as at a dead actor
            raise
        finally:
            if not self.registered:
                _UNREGISTERED.pop(self.actor_urn, None)
        return not self._killed

    def _actor_loop_running(self) -> None:
        """pykka's loop, same failure semantics, that also takes our tells bare:
        :func:`tell_bare` puts an :class:`~actors.effects.Envelope` without pykka's wrapper
        (one object and two attribute reads less per message, ~10 messages per identifier)."""
        inbox, stopped = self.actor_inbox, self.actor_stopped
        first, self._first = self._first, None  # start_with's: handled as if queued first
        ours = inbox if type(inbox) is _Inbox else None
        while not stopped.is_set():
            item: Any
            if first is not None:
                item, first = first, None
            elif ours is not None and ours.stop_next:  # stop_self, nothing queued behind it
                self._stop()
                break
            else:
                item = inbox.get()
            if type(item) is Envelope:
                message, reply_to = item, None
            else:
                message, reply_to = item.message, item.reply_to
            try:
                response = self._handle_receive(message)
                if reply_to is not None:
                    reply_to.set(response)
            except Exception:
                if reply_to is not None:
                    logger.info("Exception returned from %s to caller:", self, exc_info=True)
                    reply_to.set_exception()
                else:
                    self._handle_failure(*sys.exc_info())
                    try:
                        self.on_failure(*sys.exc_info())
                    except Exception:
                        self._handle_failure(*sys.exc_info())
            except BaseException:
                logger.debug("%r in %s. Stopping all actors.", sys.exc_info()[1], self)
                self._stop()
                pykka.ActorRegistry.stop_all()

    def _actor_loop_teardown(self) -> None:
        """pykka's teardown: queued asks fail as at a dead actor, a queued stop answers, and
        tells (bare ones too) are dropped."""
        inbox = self.actor_inbox
        while not inbox.empty():
            item = inbox.get()
            reply_to = getattr(item, "reply_to", None)  # a bare Envelope is a tell
            if reply_to is None:
                continue
            if isinstance(item.message, _ActorStop):
                reply_to.set(None)
            else:
                dead = pykka.ActorDeadError(f"{self.actor_ref} stopped before handling the message")
                reply_to.set_exception(exc_info=(pykka.ActorDeadError, dead, None))

    def _handle_receive(self, message: Any) -> Any:
        try:
            if type(message) is Envelope:  # ours: pykka's dispatch only checks its own types
                return self.on_receive(message)
            return super()._handle_receive(message)
        except Exception:
            raise
        except BaseException:
            self._killed = True  # pykka stops every actor; this carrier must end (above)
            self._fail_current_ask()
            raise

    def _fail_current_ask(self) -> None:
        """pykka's loop answers nothing to an ask whose handler a ``BaseException`` ended: its
        asker would wait forever (or until its timeout). It gets ``ActorDeadError`` here."""
        inbox = self.actor_inbox
        envelope = inbox.current if isinstance(inbox, _Inbox) else None
        reply_to = getattr(envelope, "reply_to", None)
        if reply_to is not None:
            dead = pykka.ActorDeadError(f"{self.actor_ref} was killed handling the message")
            try:
                reply_to.set_exception(exc_info=(pykka.ActorDeadError, dead, None))
            except queue.Full:
                pass  # answered already

    def _stop(self) -> None:
        """pykka's ``_stop``; an unregistered actor skips the registry (it is not in its list,
        which ``unregister`` scans: O(actors) per FetchActor stop, for a debug line)."""
        if self.registered:
            super()._stop()
            return
        self.actor_stopped.set()
        try:
            self.on_stop()
        except Exception:
            self._handle_failure(*sys.exc_info())
