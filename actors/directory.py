"""Who is who in one actor system: names to live refs, factories, and the live effects.

The :class:`Directory` owns registration, lookup and the factories that (re)start actors:
fixed names (Scheduler, Releaser) restart through theirs, DomainThrottles are a *family* started
lazily the first time their name is looked up, FetchActors are spawned per unit of work.

Why no lock: every caller is a greenlet on the one gevent hub, and nothing here yields between
looking a name up and registering it — an actor registers its ref from its own ``__init__``
(through :meth:`Directory.bind`), which pykka runs before the actor's loop starts, the only
point where starting an actor yields. So two FetchActors asking for the same new domain at once
find one DomainThrottle, not two.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import pykka
from pykka._envelope import Envelope as _PykkaEnvelope

from .clock import TimerHandle
from .effects import Envelope
from .names import EXTERNAL, TIMER, fetch_name, is_fetch_name, parse_throttle_name
from .runtime import GeventFuture, stop_self, tell_bare
from .services import Services
from .work import RunningWork

logger = logging.getLogger(__name__)

__all__ = ["Directory", "LiveEffects"]

T = TypeVar("T")
Factory = Callable[[], pykka.ActorRef]
FamilyFactory = Callable[[str], pykka.ActorRef]
#: Starts the FetchActor of a name with its one unit of work as its first message.
FetchFactory = Callable[[str, Envelope], pykka.ActorRef]


class Directory:
    """Names → live refs of one system, plus how to start what is missing."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.work = RunningWork()  # the blocking part of every FetchActor
        self._refs: dict[str, pykka.ActorRef] = {}
        self._factories: dict[str, Factory] = {}
        self._families: list[tuple[Callable[[str], object], FamilyFactory]] = []
        self._fetch_factory: FetchFactory | None = None
        self._fetch_numbers = itertools.count(1)
        self._closed = False

    # -- definition (at system start, before any actor runs) ----------------------------------

    def define(self, name: str, factory: Factory) -> None:
        """``name`` is (re)started by ``factory``; it is started when the Supervisor says so."""
        self._factories[name] = factory

    def define_family(self, parse: Callable[[str], object], factory: FamilyFactory) -> None:
        """Names for which ``parse`` is not None are started lazily on first lookup."""
        self._families.append((parse, factory))

    def define_fetch(self, factory: FetchFactory) -> None:
        self._fetch_factory = factory

    # -- registration ---------------------------------------------------------------------

    def bind(self, name: str, ref: pykka.ActorRef | None) -> LiveEffects:
        """Register ``ref`` under ``name`` (an actor's ``__init__`` calls this) and return the
        actor's effects."""
        if ref is not None:
            self._refs[name] = ref
        return LiveEffects(self, name, ref)

    def forget(self, name: str, ref: pykka.ActorRef | None) -> None:
        """Unregister ``name`` if it still maps to ``ref`` (a replacement keeps its entry)."""
        if ref is not None and self._refs.get(name) is ref:
            del self._refs[name]

    def close(self) -> None:
        """The system is stopping: start nothing more (a FetchActor reporting to a stopped
        DomainThrottle must not bring it back)."""
        self._closed = True

    def external(self, sender: str = EXTERNAL) -> LiveEffects:
        """Effects for callers outside the system (the relay, tests): tell and ask only."""
        return LiveEffects(self, sender, None)

    # -- lookup -----------------------------------------------------------------------------

    def lookup(self, name: str, start: bool = True) -> pykka.ActorRef | None:
        """The live ref of ``name``; a family member is started when missing and ``start``."""
        ref = self._refs.get(name)
        if ref is not None and ref.is_alive():
            return ref
        if not start or self._closed:
            return None
        factory = self._family_factory(name)
        return factory(name) if factory is not None else None

    def start(self, name: str) -> pykka.ActorRef | None:
        """Start ``name`` through its factory unless it is alive already (a DomainThrottle may
        have been started lazily before its restart timer fired); None when nothing can."""
        current = self._refs.get(name)
        if current is not None and current.is_alive():
            return current
        if self._closed:
            return None
        factory = self._factories.get(name)
        if factory is not None:
            return factory()
        family = self._family_factory(name)
        return family(name) if family is not None else None

    def spawn_fetch(self, sender: str, msg: Any) -> str:
        """Start a FetchActor and deliver its one unit of work; returns its name."""
        if self._fetch_factory is None:
            raise RuntimeError("no FetchActor factory defined")
        if self._closed:
            logger.debug("%s: stopping, no FetchActor for %r", sender, msg)
            return ""
        name = fetch_name(next(self._fetch_numbers))
        self._fetch_factory(name, Envelope(sender, msg))  # started with it (no inbox trip, P4)
        return name

    def _family_factory(self, name: str) -> FamilyFactory | None:
        for parse, factory in self._families:
            if parse(name) is not None:
                return factory
        return None

    # -- inspection -------------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self._refs)

    def refs(self) -> list[pykka.ActorRef]:
        return list(self._refs.values())

    def throttle_domains(self) -> list[str]:
        return [d for d in map(parse_throttle_name, self._refs) if d is not None]

    def fetch_actors(self) -> list[pykka.ActorRef]:
        return [ref for name, ref in self._refs.items() if is_fetch_name(name)]


class LiveEffects:
    """:class:`~actors.effects.Effects` through pykka: what one live actor does to the world."""

    __slots__ = ("name", "_directory", "_ref", "_timers")  # one per actor start (P4)

    def __init__(self, directory: Directory, name: str, ref: pykka.ActorRef | None) -> None:
        self.name = name
        self._directory = directory
        self._ref = ref
        self._timers: dict[str, tuple[float, TimerHandle, Any]] = {}

    def tell(self, target: str, msg: Any) -> bool:
        ref = self._directory.lookup(target)
        if ref is None:
            logger.debug("%s: no actor %s for %s", self.name, target, type(msg).__name__)
            return False
        # ``lookup`` saw it alive and nothing yields since: pykka's ``ActorRef.tell`` would
        # check again and wrap the same way (one frame and check less, per message: ~10 per
        # identifier, P4).
        tell_bare(ref, Envelope(self.name, msg))
        return True

    def ask(
        self, target: str, msg: Any, *, start: bool = True, timeout: float | None = None
    ) -> Any:
        ref = self._directory.lookup(target, start=start)
        if ref is None:
            raise pykka.ActorDeadError(f"no actor {target}")
        future: GeventFuture[Any] = (
            GeventFuture()
        )  # pykka's ``ActorRef.ask``, minus its repeated checks
        ref.actor_inbox.put(_PykkaEnvelope(Envelope(self.name, msg, ask=True), future))
        return future.get(timeout=timeout)

    def spawn_fetch(self, msg: Any) -> None:
        self._directory.spawn_fetch(self.name, msg)

    # -- timers -----------------------------------------------------------------------------

    def arm(self, key: str, due: float, msg: Any) -> None:
        """One timer per key, re-armed only when ``due`` moved (the hot path re-arms a lot)."""
        current = self._timers.get(key)
        if current is not None:
            if current[0] == due:
                return
            current[1].cancel()
        ref = self._ref
        if ref is None:
            raise RuntimeError(f"{self.name} has no inbox for timers")
        handle = self._directory.services.clock.call_at(due, lambda: _deliver(ref, msg))
        self._timers[key] = (due, handle, msg)

    def disarm(self, key: str) -> None:
        current = self._timers.pop(key, None)
        if current is not None:
            current[1].cancel()

    def timer_delivered(self, msg: Any) -> None:
        """Matched by identity, so a timer re-armed under the same key meanwhile is kept."""
        for key, (_, _, armed) in list(self._timers.items()):
            if armed is msg:
                del self._timers[key]

    def cancel_timers(self) -> None:
        for _, handle, _ in self._timers.values():
            handle.cancel()
        self._timers.clear()

    # -- lifecycle --------------------------------------------------------------------------

    def run(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work`` in this actor's greenlet, registered in the system's running work,
        which shutdown can cancel without killing the actor (:mod:`actors.work`)."""
        return self._directory.work.run(self.name, work, *args)

    def restart(self, child: str) -> bool:
        return self._directory.start(child) is not None

    def stop(self) -> None:
        """pykka's own ``Actor.stop``: the stop message queued behind what the inbox holds.
        ``ActorRef.stop(block=False)`` does the same through an ask and a second, converting
        future — two futures per FetchActor, which stops itself once per unit of work."""
        if self._ref is None:
            return
        try:
            stop_self(self._ref)  # with an empty inbox, no stop envelope at all (P4)
        except pykka.ActorDeadError:
            pass  # stopped already: what ``ActorRef.stop`` reports as False

    def detach(self) -> None:
        self.cancel_timers()
        self._directory.forget(self.name, self._ref)


def _deliver(ref: pykka.ActorRef, msg: Any) -> None:
    """A timer's delivery: a no-op when the actor died meanwhile (never a stray traceback)."""
    try:
        ref.tell(Envelope(TIMER, msg))
    except pykka.ActorDeadError:
        pass
