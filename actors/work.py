"""The blocking work of FetchActors, run in the actor's own greenlet yet cancellable alone.

A FetchActor's fetch used to run in a greenlet of its own (a ``gevent.pool.Group``) so that
shutdown could kill the fetch without killing the actor: pykka stops *every* actor when one
dies of a ``BaseException`` such as ``GreenletExit``. That greenlet cost a spawn and two hub
round trips per unit of work — a greenlet's creation alone measured 14 µs, the largest single
item of the CPU per identifier through the actors after the asks (``scripts/bench/
scheduler.py``, issue 16 goal P4). Here the work runs where the actor already is, and shutdown
throws :class:`_Cancel` into exactly the greenlets that are inside :meth:`RunningWork.run` at
that instant; ``run`` turns it into :class:`~actors.effects.WorkCancelled` before it can reach
pykka's loop. ``_Cancel`` is a ``BaseException`` for the same reason ``GreenletExit`` is: no
``except Exception`` inside the work (a port converting errors to ``FetchFailed``) swallows it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
import gevent.event
from gevent import getcurrent

from .effects import WorkCancelled

logger = logging.getLogger(__name__)

__all__ = ["RunningWork"]

T = TypeVar("T")


class _Cancel(BaseException):
    """Thrown into a greenlet inside :meth:`RunningWork.run` by :meth:`RunningWork.kill`."""


class RunningWork:
    """The greenlets running blocking work right now: counted, awaited, cancellable."""

    def __init__(self) -> None:
        self._inside: set[Any] = set()
        self._idle = gevent.event.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._inside)

    def run(self, name: str, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in the calling greenlet; :class:`WorkCancelled` if killed meanwhile.
        What ``work`` raises is raised here unchanged."""
        current = getcurrent()
        inside = self._inside
        inside.add(current)
        self._idle.clear()
        try:
            return work(*args)
        except _Cancel:
            raise WorkCancelled(f"{name}: work cancelled") from None
        finally:
            inside.discard(current)
            if not inside:
                self._idle.set()

    def join(self, timeout: float | None = None) -> bool:
        """True once no work runs, False if some still does after ``timeout`` seconds."""
        return bool(self._idle.wait(timeout))

    def kill(self, block: bool = True, timeout: float | None = None) -> None:
        """Cancel every running work; with ``block``, wait (at most ``timeout``) for them to
        have left :meth:`run`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        hub = gevent.get_hub()
        for greenlet in list(self._inside):
            hub.loop.run_callback(self._cancel, greenlet)
        if block:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            self.join(remaining)

    def _cancel(self, greenlet: Any) -> None:
        """From the hub: throw only into a greenlet still inside ``run`` (one that left it
        meanwhile is back in pykka's loop, where the exception would kill the actor)."""
        if greenlet in self._inside and not greenlet.dead:
            try:
                greenlet.throw(_Cancel())
            except Exception:  # the greenlet's own failure is reported where it runs
                logger.exception("cancelling work failed")
