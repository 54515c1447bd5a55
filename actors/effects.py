"""The seam between an actor's decisions and the world: everything an actor *does*.

An actor computes with pure policy and then performs effects — tell, ask, spawn a FetchActor,
arm or disarm a timer, run blocking work, restart a child, stop itself — only through its
:class:`Effects`. The live implementation (:class:`actors.directory.LiveEffects`) delivers
through pykka; replay (:mod:`actors.trace.replay`) hands the same actor a recording
implementation and compares what it did with the trace. Targets are always *names*
(:mod:`actors.names`), never refs, so a restarted actor is reached under its old name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from messages._base import fast_init

__all__ = ["Binder", "Effects", "Envelope", "WorkCancelled"]

T = TypeVar("T")


class WorkCancelled(Exception):
    """Blocking work given to :meth:`Effects.run` was cancelled (the system is stopping)."""


@fast_init
@dataclass(frozen=True, slots=True)
class Envelope:
    """A message plus who sent it (for traces) and whether the sender waits for an answer.

    ``traced=False`` keeps test instrumentation (barrier pings) out of message traces.
    """

    sender: str
    message: Any
    ask: bool = False
    traced: bool = True


class Effects(Protocol):
    """What one actor can do to the world; each instance is bound to one actor's name."""

    name: str

    def tell(self, target: str, msg: Any) -> bool:
        """Deliver ``msg``; False when the target is gone (e.g. being restarted)."""

    def ask(
        self, target: str, msg: Any, *, start: bool = True, timeout: float | None = None
    ) -> Any:
        """Ask downward only (ARCHITECTURE §3). Raises ``pykka.ActorDeadError`` when the target
        is gone, or absent and ``start`` is False (a lazily started actor is not created)."""

    def spawn_fetch(self, msg: Any) -> None:
        """Start a FetchActor for one unit of work and deliver ``msg`` to it."""

    def arm(self, key: str, due: float, msg: Any) -> None:
        """Deliver ``msg`` to this actor at the absolute instant ``due``; one timer per key."""

    def disarm(self, key: str) -> None: ...

    def timer_delivered(self, msg: Any) -> None:
        """A timer message reached the actor: its key is free again."""

    def cancel_timers(self) -> None: ...

    def run(self, work: Callable[..., T], *args: Any) -> T:
        """Run blocking work where shutdown can cancel it (then :class:`WorkCancelled` is
        raised); what the work raises is raised here."""

    def restart(self, child: str) -> bool:
        """Start ``child`` afresh under its name (Supervisor only); False if it cannot be."""

    def stop(self) -> None:
        """Stop this actor once the current message is handled."""

    def detach(self) -> None:
        """The actor stopped or died: forget its timers and its name's registration."""


#: Builds the Effects of the actor ``name`` whose pykka ref is given (None in replay).
Binder = Callable[[str, Any], Effects]
