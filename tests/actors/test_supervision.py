"""Supervision: restart with backoff, rebuild from the purgatory store, drop poison (ARCH §3)."""

import logging

from actors.fakes import MockSyncContext
from actors.names import SCHEDULER, SUPERVISOR
from actors.observer import SyncObserver
from actors.supervision import RestartPolicy
from messages.scheduler import EnqueueSync
from messages.supervisor import ChildFailed
from tests.support.wait import wait_for

DOMAINS = ("left.example", "right.example")


class FaultyObserver(SyncObserver):
    """A metrics hook that raises at chosen moments: the fault injected into an actor."""

    def __init__(self, crash_scheduler_at=None, crash_throttle_after=None, poison=None):
        self.crash_scheduler_at = crash_scheduler_at
        self.crash_throttle_after = crash_throttle_after
        self.poison = poison
        self.throttle_calls = 0

    def queue_size(self, size):
        if size == self.crash_scheduler_at:
            self.crash_scheduler_at = None
            raise RuntimeError("injected: Scheduler crash")

    def throttle_changed(self, domain, in_flight, queued, window_used):
        self.throttle_calls += 1
        if (
            self.crash_throttle_after is not None
            and self.throttle_calls >= self.crash_throttle_after
        ):
            self.crash_throttle_after = None
            raise RuntimeError(f"injected: {domain} crash")

    def sync_attempt(self, identifier):
        if identifier == self.poison:
            raise RuntimeError("injected: poison identifier")


def _burst_ctx(count=30):
    ctx = MockSyncContext().with_fetch_delay(0.01)
    for i in range(count):
        identifier = f"r{i}"
        urls = [f"https://{d}/{identifier}.git" for d in DOMAINS]
        ctx.with_urls(urls, identifier=identifier)
        ctx.with_needed_oids([f"{identifier}-oid"], identifier=identifier)
        ctx.url_provides(urls[i % 2], [f"{identifier}-oid"])
    return ctx


def test_scheduler_and_throttle_crash_mid_burst_and_everything_still_completes(
    start_system, caplog
):
    caplog.set_level(logging.INFO, logger="actors")
    ctx = _burst_ctx()
    observer = FaultyObserver(crash_scheduler_at=15, crash_throttle_after=12)
    h = start_system(
        ctx, observer=observer, max_concurrent=1, max_per_minute=1000, synced_delay=0.0
    )
    for i in range(30):
        h.system.enqueue_sync(f"r{i}", "synced")
    wait_for(lambda: not ctx.pending_identifiers(), timeout=20, message="all released")
    assert ctx.released == {f"r{i}" for i in range(30)}
    restarted = {r.getMessage() for r in caplog.records if r.getMessage().startswith("restarted")}
    assert "restarted Scheduler" in restarted
    assert any(m.startswith("restarted DomainThrottle[") for m in restarted), restarted
    assert observer.crash_scheduler_at is None and observer.crash_throttle_after is None


def test_a_message_that_kills_twice_is_dropped_as_poison(start_system, caplog):
    caplog.set_level(logging.INFO, logger="actors")
    ctx = _burst_ctx(4)
    h = start_system(ctx, observer=FaultyObserver(poison="bad"), synced_delay=0.0)
    h.system.enqueue_sync("bad", "synced")

    def restarts():
        return sum(r.getMessage() == "restarted Scheduler" for r in caplog.records)

    wait_for(lambda: restarts() == 2, timeout=10, message="two Scheduler restarts")
    poison = [r for r in caplog.records if "poison message dropped" in r.getMessage()]
    assert len(poison) == 1 and "EnqueueSync(identifier='bad'" in poison[0].getMessage()
    for i in range(4):
        h.system.enqueue_sync(f"r{i}", "synced")
    wait_for(lambda: not ctx.pending_identifiers(), timeout=10, message="others still sync")
    assert restarts() == 2  # the dropped message was not redelivered a third time


def test_restarted_scheduler_rebuilds_its_queue_from_pending_identifiers(start_system):
    """The sync queue is not the source of truth: after a restart, every identifier with
    held events is queued again (with the immediate delay) and syncs."""
    ctx = _burst_ctx(6)
    h = start_system(ctx)
    scheduler = h.directory.lookup(SCHEDULER)
    scheduler.stop()  # lose the queue on purpose
    h.outside(SCHEDULER).tell(SUPERVISOR, ChildFailed(SCHEDULER, repr(RuntimeError("test"))))

    def replaced():
        current = h.directory.lookup(SCHEDULER)
        return current is not None and current is not scheduler

    wait_for(replaced, message="a new Scheduler")
    wait_for(lambda: not ctx.pending_identifiers(), timeout=10, message="all released")


def test_restart_policy_doubles_backoff_and_flags_repeat_offenders():
    policy = RestartPolicy(minimum=0.1, maximum=1.0, quiet=60)
    msg = EnqueueSync("x", "synced")
    first = policy.on_failure("Scheduler", msg, now=0.0)
    second = policy.on_failure("Scheduler", msg, now=1.0)
    other = policy.on_failure("Scheduler", EnqueueSync("y", "synced"), now=2.0)
    assert (first.delay, first.redeliver) == (0.1, True)
    assert (second.delay, second.redeliver) == (0.2, False)
    assert (other.delay, other.redeliver) == (0.4, True)
    assert policy.on_failure("Scheduler", None, now=3.0).delay == 0.8
    assert policy.on_failure("Scheduler", None, now=4.0).delay == 1.0
    assert policy.on_failure("Scheduler", None, now=100.0).delay == 0.1  # quiet period passed


def test_unknown_messages_are_logged_not_fatal(start_system, caplog):
    h = start_system(MockSyncContext())
    h.directory.lookup(SCHEDULER).tell("not an envelope")
    h.outside().tell(SCHEDULER, EnqueueSync)  # a class, not a message instance
    h.settle()
    assert h.directory.lookup(SCHEDULER).is_alive()
    assert sum("unknown message" in r.getMessage() for r in caplog.records) == 2


class FailingGrant(SyncObserver):
    """A hook bug at the moment a DomainThrottle grants a TryStart (an ask)."""

    def __init__(self):
        self.armed = True

    def throttle_changed(self, domain, in_flight, queued, window_used):
        if self.armed and in_flight == 1:
            self.armed = False
            raise RuntimeError("injected: hook bug while granting")


def test_an_ask_whose_handler_raises_restarts_the_actor_instead_of_leaking_its_slot(
    start_system, fake_clock, caplog
):
    """The asker gets the exception (pykka), and the throttle dies as after a tell: its grant
    never reached anyone, so a throttle that lived on would hold that slot forever (with one
    slot per domain, the domain would never be fetched from again)."""
    caplog.set_level(logging.INFO, logger="actors")
    url = "https://one.example/r.git"
    ctx = MockSyncContext(clock=fake_clock.now).with_urls([url])
    ctx.with_needed_oids(["o1"], identifier="repo").url_provides(url, ["o1"])
    h = start_system(
        ctx, clock=fake_clock, observer=FailingGrant(), max_concurrent=1, synced_delay=0.0
    )
    h.enqueue("repo")
    assert ctx.fetch_log == []  # the grant was lost with the exception
    assert any(
        "died answering TryStart(identifier='repo')" in r.getMessage() for r in caplog.records
    )
    h.advance(0.05)  # the Supervisor's restart delay; the Releaser re-enqueues what is held
    h.advance(0.5)  # the synced delay also follows a restart (S4.2)
    assert ctx.released == {"repo"}
    [domain] = h.status().domains
    assert (domain.in_flight, domain.queued) == (0, 0)
