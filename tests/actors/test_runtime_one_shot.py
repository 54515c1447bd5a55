"""A FetchActor's start and stop without inbox trips (actors/runtime.py, P4): ``start_with``
hands the first message over at start, ``stop_self`` ends the loop after the current message
when nothing is queued. Both keep pykka's order: the first message is handled after
``on_start`` and before anything told meanwhile; what is queued before a stop is handled, what
arrives after it is dropped (tells) or fails (asks) as behind a stop envelope."""

from __future__ import annotations

import gevent
import pykka
import pytest

from actors.effects import Envelope
from actors.runtime import GeventActor, stop_self, tell_bare, unregistered_alive
from tests.support.wait import wait_for


class Worker(GeventActor):
    """Records its life; ``"stop"`` stops itself, ``"stop-slowly"`` yields first (so the test
    can queue something meanwhile), ``"stop-then-yield"`` yields after stopping itself."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[object] = []
        self.queued_at_stop: int | None = None

    def on_start(self) -> None:
        self.log.append("on_start")

    def on_receive(self, message):
        text = message.message if isinstance(message, Envelope) else message
        if text == "log":
            return list(self.log)
        self.log.append(text)
        if text == "stop-slowly":
            gevent.sleep(0.05)
        if text in ("stop", "stop-slowly", "stop-then-yield"):
            stop_self(self.actor_ref)
            self.queued_at_stop = self.actor_inbox.qsize()
        if text == "stop-then-yield":
            gevent.sleep(0.05)
        return None

    def on_stop(self) -> None:
        self.log.append("on_stop")


class OneShot(Worker):
    registered = False  # like a FetchActor


@pytest.mark.parametrize("cls", [Worker, OneShot])
def test_start_with_handles_the_first_message_after_on_start_before_later_tells(cls):
    ref = cls.start_with(Envelope("test", "first"))
    actor = ref._actor_weakref()  # noqa: SLF001
    try:
        assert actor.log == []  # the loop has not run yet: nothing was handled at start
        tell_bare(ref, Envelope("test", "second"))
        assert ref.ask("log", timeout=5) == ["on_start", "first", "second"]
        listed = unregistered_alive() if cls is OneShot else pykka.ActorRegistry.get_all()
        assert ref in listed
    finally:
        ref.stop()
    assert ref not in unregistered_alive() and ref not in pykka.ActorRegistry.get_all()


def test_stop_self_with_nothing_queued_ends_the_loop_without_a_stop_envelope():
    ref = OneShot.start_with(Envelope("test", "stop"))
    actor = ref._actor_weakref()  # noqa: SLF001
    log = actor.log
    wait_for(lambda: not ref.is_alive(), timeout=5, message="stopped itself")
    assert log == ["on_start", "stop", "on_stop"]
    assert actor.queued_at_stop == 0  # no stop envelope was put
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("log", timeout=5)


def test_what_arrives_after_stop_self_is_handled_as_if_behind_a_stop_envelope():
    ref = OneShot.start_with(Envelope("test", "stop-then-yield"))
    log = ref._actor_weakref().log  # noqa: SLF001
    wait_for(lambda: log[-1:] == ["stop-then-yield"], timeout=5, message="in the handler")
    late_ask = ref.ask("log", block=False)  # the actor is still alive: queued
    tell_bare(ref, Envelope("test", "late tell"))
    with pytest.raises(pykka.ActorDeadError):
        late_ask.get(timeout=5)
    wait_for(lambda: not ref.is_alive(), timeout=5, message="stopped")
    assert log == ["on_start", "stop-then-yield", "on_stop"]  # the late tell was dropped


def test_stop_self_with_a_message_queued_lets_it_be_handled_first():
    ref = OneShot.start_with(Envelope("test", "stop-slowly"))
    actor = ref._actor_weakref()  # noqa: SLF001
    log = actor.log
    wait_for(lambda: log[-1:] == ["stop-slowly"], timeout=5, message="in the handler")
    tell_bare(ref, Envelope("test", "queued before the stop"))
    wait_for(lambda: not ref.is_alive(), timeout=5, message="stopped")
    assert actor.queued_at_stop == 2  # the queued tell, then pykka's stop envelope
    assert log == ["on_start", "stop-slowly", "queued before the stop", "on_stop"]


def test_stop_self_from_outside_an_idle_actor_still_stops_it():
    ref = Worker.start()
    try:
        assert ref.ask("log", timeout=5) == ["on_start"]  # idle now, waiting for a message
        stop_self(ref)  # the loop waits: a stop envelope wakes it
        wait_for(lambda: not ref.is_alive(), timeout=5, message="stopped")
    finally:
        pykka.ActorRegistry.stop_all()
