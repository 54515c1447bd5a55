"""The actor runtime on gevent (actors/runtime.py, actors/work.py): pykka's contract kept.

Every actor of the system runs on :class:`GeventActor`; these tests pin down the pykka
behaviour the actors rely on (asks answer or raise, a future is set once, stop answers, an
actor started from an actor that waits for it runs) and that shutdown cancels blocking work
without killing the actor (ARCHITECTURE §3, S8: a FetchActor reports exactly once).
"""

from __future__ import annotations

import gc
import queue
import typing
import weakref

import gevent
import pykka
import pytest

from actors import system as actor_system
from actors.clock import FakeClock
from actors.config import SyncConfig
from actors.effects import Envelope, WorkCancelled
from actors.fakes import MockSyncContext
from actors.runtime import (
    GC_YOUNG_THRESHOLD,
    MAX_IDLE_CARRIERS,
    GeventActor,
    GeventFuture,
    tell_bare,
    tune_gc,
    unregistered_alive,
)
from actors.work import RunningWork
from tests.support.wait import wait_for


class Echo(GeventActor):
    def on_receive(self, message):
        if isinstance(message, Exception):
            raise message
        if message == "sleep":
            gevent.sleep(0.01)
        return message


class Spawner(GeventActor):
    """Starts an actor and waits for its answer from its own loop."""

    def on_receive(self, message):
        child = Echo.start()
        try:
            return child.ask(message, timeout=5)
        finally:
            child.stop()


def test_ask_answers_in_order_and_raises_what_the_handler_raised():
    ref = Echo.start()
    try:
        futures = [ref.ask(i, block=False) for i in range(50)]
        assert [f.get(timeout=5) for f in futures] == list(range(50))
        with pytest.raises(ValueError, match="bad input"):
            ref.ask(ValueError("bad input"), timeout=5)
        assert ref.ask("still alive", timeout=5) == "still alive"
    finally:
        ref.stop()


def test_future_is_set_once_read_many_times_and_times_out_as_pykka_does():
    future: GeventFuture[int] = GeventFuture()
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0.01)
    readers = [gevent.spawn(future.get, timeout=5) for _ in range(3)]
    gevent.sleep(0)
    future.set(7)
    assert [r.get(timeout=5) for r in readers] == [7, 7, 7]
    assert future.get() == 7
    with pytest.raises(queue.Full):
        future.set(8)


def test_an_outer_gevent_timeout_is_not_turned_into_a_pykka_timeout():
    future: GeventFuture[int] = GeventFuture()
    with pytest.raises(gevent.Timeout), gevent.Timeout(0.01):
        future.get(timeout=5)


def test_stop_answers_true_then_asks_fail_as_at_a_dead_actor():
    ref = Echo.start()
    assert ref.stop(timeout=5) is True
    assert ref.stop(timeout=5) is False
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("x", timeout=5)


def test_an_actor_started_by_a_busy_actor_runs_even_when_loop_carriers_are_reused():
    """A freed carrier greenlet is handed to the next start; a start never waits for a busy
    one (the Spawner blocks on its child: that would deadlock)."""
    for _ in range(3):  # warm: carriers of stopped actors are idle now
        assert Spawner.start().ask("a", timeout=5) == "a"
        pykka.ActorRegistry.stop_all()
    spawners = [Spawner.start() for _ in range(20)]
    try:
        futures = [s.ask(i, block=False) for i, s in enumerate(spawners)]
        assert [f.get(timeout=5) for f in futures] == list(range(20))
    finally:
        for spawner in spawners:
            spawner.stop()


def test_killing_running_work_cancels_it_and_leaves_other_greenlets_alone():
    work = RunningWork()
    outcome: list[str] = []

    def blocking() -> str:
        gevent.sleep(30)
        return "finished"

    def runner() -> None:
        try:
            outcome.append(work.run("worker", blocking))
        except WorkCancelled:
            outcome.append("cancelled")
        gevent.sleep(0.01)  # outside run: the kill must not reach here
        outcome.append("went on")

    greenlet = gevent.spawn(runner)
    bystander = gevent.spawn(gevent.sleep, 0.05)
    gevent.sleep(0)
    assert len(work) == 1 and not work.join(timeout=0.01)
    work.kill(block=True, timeout=5)
    assert len(work) == 0  # left run at once, not after the 30 s sleep
    greenlet.join(timeout=5)
    bystander.join(timeout=5)
    assert outcome == ["cancelled", "went on"]
    assert len(work) == 0 and work.join(timeout=0)
    assert bystander.successful()


def test_work_that_raises_raises_in_the_caller_unchanged():
    work = RunningWork()

    def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError, match="bug"):
        work.run("worker", broken)
    assert len(work) == 0


class Ephemeral(Echo):
    registered = False


def test_an_unregistered_actor_is_listed_for_leftover_checks_while_it_runs():
    """FetchActors stay out of pykka's list-based registry; the leftover check of every test
    (tests/conftest.py) still sees them through ``unregistered_alive``."""
    ref = Ephemeral.start()
    assert ref.ask("x", timeout=5) == "x"
    assert ref in unregistered_alive() and ref not in pykka.ActorRegistry.get_all()
    assert ref.stop(timeout=5) is True
    assert ref not in unregistered_alive()


class Current(GeventActor):
    """Answers with the greenlet its loop runs on; "sleep" blocks its handler for a while."""

    def on_receive(self, message):
        if message == "sleep":
            gevent.sleep(30)
        return gevent.getcurrent()


def test_an_actor_killed_while_waiting_for_a_message_is_dead_not_a_loopless_zombie():
    """GreenletExit thrown into an idle actor's carrier (gevent.kill, killall) reaches it
    outside pykka's handling; the actor must stop (asks fail as at a dead actor) instead of
    staying alive with no loop, where every later ask would wait forever."""
    ref = Current.start()
    carrier = ref.ask("where", timeout=5)
    gevent.sleep(0)  # back in its inbox
    gevent.kill(carrier)
    wait_for(lambda: carrier.dead, message="the killed carrier to end")
    assert not ref.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("x", timeout=5)
    assert Echo.start().ask("next", timeout=5) == "next"  # carriers still serve new actors
    pykka.ActorRegistry.stop_all()


def test_a_carrier_killed_inside_a_handler_ends_instead_of_serving_the_next_actor():
    """pykka answers a BaseException in a handler by stopping every actor; the carrier it was
    thrown into must end then (its killer waits for that), not park as an idle carrier."""
    ref = Current.start()
    carrier = ref.ask("where", timeout=5)
    busy = ref.ask("sleep", block=False)
    gevent.sleep(0.01)
    gevent.kill(carrier)
    wait_for(lambda: carrier.dead, message="the killed carrier to end")  # not parked idle
    assert not ref.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        busy.get(timeout=5)
    assert Echo.start().ask("next", timeout=5) == "next"
    pykka.ActorRegistry.stop_all()


class FailingStart(Echo):
    def on_start(self):
        raise RuntimeError("injected: on_start")


def test_an_actor_whose_on_start_raises_fails_asks_and_frees_its_carrier():
    ref = FailingStart.start()
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("x", timeout=5)  # queued before on_start ran: failed at teardown
    assert not ref.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("x", timeout=5)
    assert Echo.start().ask("next", timeout=5) == "next"
    pykka.ActorRegistry.stop_all()


def test_asks_queued_behind_a_stop_fail_as_at_a_dead_actor():
    ref = Echo.start()
    first = ref.ask("sleep", block=False)
    stopped = ref.stop(block=False)
    late = ref.ask("late", block=False)  # still alive when queued, handled never
    assert first.get(timeout=5) == "sleep"
    assert stopped.get(timeout=5) is True
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=5)


class Tracked(Echo):
    """Keeps a weak reference to its latest instance."""

    last: typing.Any = None

    def __init__(self):
        super().__init__()
        Tracked.last = weakref.ref(self)


def test_a_stopped_actor_is_not_kept_alive_by_its_idle_carrier():
    """An idle carrier waits for its next loop holding none: a stopped actor (a FetchActor
    with its sync's state) is freed, not kept by up to MAX_IDLE_CARRIERS parked greenlets."""
    import gc

    ref = Tracked.start()
    assert ref.ask("x", timeout=5) == "x"
    actor = Tracked.last
    assert ref.stop(timeout=5) is True
    del ref
    gevent.sleep(0.01)  # the carrier is back waiting for a loop
    gc.collect()
    assert actor() is None


def test_carriers_killed_while_idle_are_replaced_without_losing_a_start():
    """Each idle carrier killed leaves one replacement in its place (not two, not none): more
    actors than the idle carriers can hold all start and answer afterwards."""
    refs = [Current.start() for _ in range(4)]
    carriers = [r.ask("where", timeout=5) for r in refs]
    for r in refs:
        r.stop(timeout=5)
    gevent.sleep(0.01)  # parked: waiting for their next loop
    for carrier in carriers:
        gevent.kill(carrier)
    wait_for(lambda: all(c.dead for c in carriers), message="the idle carriers to end")
    many = [Echo.start() for _ in range(MAX_IDLE_CARRIERS + 8)]
    try:
        futures = [r.ask(i, block=False) for i, r in enumerate(many)]
        assert [f.get(timeout=5) for f in futures] == list(range(len(many)))
    finally:
        pykka.ActorRegistry.stop_all()


def test_the_stop_flag_is_what_is_alive_reads_and_a_waiter_wakes_when_it_is_set():
    ref = Echo.start()
    stopped = ref.actor_stopped
    assert ref.is_alive() and not stopped.is_set()
    assert stopped.wait(timeout=0.01) is False  # not set: the wait times out
    waiter = gevent.spawn(stopped.wait, 5)
    gevent.sleep(0)
    assert ref.stop() is True
    assert waiter.get(timeout=5) is True
    assert stopped.is_set() and not ref.is_alive()
    assert stopped.wait() is True  # set: no wait at all


@pytest.fixture
def gc_threshold():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_a_system_start_raises_the_gc_young_threshold_and_keeps_the_older_ones(gc_threshold):
    gc.set_threshold(700, 11, 12)
    system = actor_system.start(MockSyncContext(), SyncConfig(), FakeClock(0.0))
    try:
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 11, 12)
    finally:
        system.stop()


@pytest.mark.parametrize("chosen", [(GC_YOUNG_THRESHOLD * 4, 10, 10), (0, 10, 10)])
def test_tune_gc_never_lowers_a_host_threshold_nor_enables_a_disabled_collector(
    gc_threshold, chosen
):
    gc.set_threshold(*chosen)
    tune_gc()
    assert gc.get_threshold() == chosen


class Recorder(GeventActor):
    """Keeps what reached it; a message "boom" fails its handler."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[object] = []
        self.failures: list[str] = []

    def on_receive(self, message):
        if isinstance(message, Envelope) and message.message == "boom":
            raise RuntimeError("injected: a tell failed")
        if message == "seen":
            return list(self.seen)
        self.seen.append(message.message if isinstance(message, Envelope) else message)
        return None

    def on_failure(self, exc_type, exc, tb):
        self.failures.append(str(exc))


def test_bare_tells_reach_the_handler_in_order_with_asks_and_a_failing_one_is_a_tell_failure():
    ref = Recorder.start()
    try:
        tell_bare(ref, Envelope("test", "one"))
        ref.tell("two")  # pykka's own tell, wrapped: same inbox, same order
        tell_bare(ref, Envelope("test", "three"))
        assert ref.ask("seen", timeout=5) == ["one", "two", "three"]
        tell_bare(ref, Envelope("test", "boom"))  # a tell: pykka stops the actor, on_failure
        wait_for(lambda: not ref.is_alive(), timeout=5)
        assert ref._actor_weakref().failures == ["injected: a tell failed"]  # noqa: SLF001
    finally:
        pykka.ActorRegistry.stop_all()


def test_bare_tells_queued_behind_a_stop_are_dropped_and_asks_there_fail():
    ref = Recorder.start()
    seen = ref._actor_weakref().seen  # noqa: SLF001  # kept: the stopped actor is freed
    first = ref.ask("sleep-free", block=False)
    stopped = ref.stop(block=False)
    tell_bare(ref, Envelope("test", "late tell"))  # still alive when queued
    late = ref.ask("late ask", block=False)
    assert first.get(timeout=5) is None
    assert stopped.get(timeout=5) is True
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=5)
    assert seen == ["sleep-free"]  # the late tell was dropped, never handled
