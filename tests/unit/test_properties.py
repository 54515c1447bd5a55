"""Property tests over random interleavings (hypothesis state machines).

Throttle: enqueue / dispatch / main-path try-start / completion / clock advance never exceed
the concurrency or window limits, even transiently and as a remote observes them (S6.1, S6.4),
and round-robin is fair: no waiting identifier is passed over while another is served twice
(S6.2).
Queue: enqueue / scan / sync end never lose an identifier that still has pending events, and
the heap's wake-up is always the earliest waiting attempt (S4).
"""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors.queue import SyncQueue
from actors.throttle import DomainThrottleState

IDS = st.sampled_from([f"id{i}" for i in range(6)])
URLS = st.sampled_from([None, "https://d.example/1.git", "https://d.example/2.git"])
STEPS = st.sampled_from([0.0, 0.1, 1.0, 7.5, 20.0, 59.9, 60.0, 61.0])
MAX_CONCURRENT, MAX_PER_WINDOW, WINDOW = 3, 5, 60.0


class ThrottleMachine(RuleBasedStateMachine):
    """Requests are intervals [start, end]; a remote may see each one anywhere inside it. The
    limits must hold for what a remote can observe: at no instant more than the concurrency
    limit running, and no window of WINDOW seconds touched by more than MAX_PER_WINDOW."""

    def __init__(self):
        super().__init__()
        self.state = DomainThrottleState("d.example", MAX_CONCURRENT, MAX_PER_WINDOW, WINDOW)
        self.now = 0.0
        self.finished: list[tuple[float, float]] = []  # requests that ended
        self.held: dict[str, float] = {}  # dispatched identifiers whose slot is reserved
        self.requesting: set[str] = set()  # ... of which the request is running
        self.done_fetching: set[str] = set()  # slot returned, unit of work not reported yet
        self.main: list[float] = []  # main-path requests in flight

    @rule(identifier=IDS, tried=st.frozensets(URLS.filter(bool), max_size=2))
    def enqueue(self, identifier, tried):
        self.state.enqueue_identifier(identifier, tried)

    @rule()
    def dispatch(self):
        for identifier, _ in self.state.dispatch_ready(self.now):
            self.held[identifier] = self.now

    @precondition(lambda self: set(self.held) - self.requesting)
    @rule(data=st.data())
    def request_starts(self, data):
        self.requesting.add(data.draw(st.sampled_from(sorted(set(self.held) - self.requesting))))

    @precondition(lambda self: self.requesting)
    @rule(data=st.data())
    def request_ends(self, data):
        """SlotFreed: the slot comes back before the release work (S5.2 order)."""
        identifier = data.draw(st.sampled_from(sorted(self.requesting)))
        self.requesting.discard(identifier)
        self.finished.append((self.held.pop(identifier), self.now))
        self.done_fetching.add(identifier)
        self.state.release_slot(identifier, self.now)

    @precondition(lambda self: (set(self.held) - self.requesting) | self.done_fetching)
    @rule(data=st.data(), url=URLS)
    def unit_of_work_reported(self, data, url):
        """QueuedFetchDone: after a request (slot already back), or instead of one."""
        identifier = data.draw(
            st.sampled_from(sorted((set(self.held) - self.requesting) | self.done_fetching))
        )
        if identifier in self.done_fetching:
            self.done_fetching.discard(identifier)
            url = url or "https://d.example/1.git"
        else:
            del self.held[identifier]  # no request was made: the slot is returned unused
        self.state.finish_queued(identifier, url, self.now)

    @rule()
    def main_path_start(self):
        if self.state.try_start(self.now):
            self.main.append(self.now)

    @precondition(lambda self: self.main)
    @rule()
    def main_path_done(self):
        self.finished.append((self.main.pop(0), self.now))
        self.state.complete_request(self.now)

    @rule(step=STEPS)
    def advance(self, step):
        self.now += step

    def _intervals(self):
        running = [(start, self.now) for start in [*self.held.values(), *self.main]]
        return [*self.finished, *running]

    @invariant()
    def concurrency_never_exceeded(self):
        assert len(self.held) + len(self.main) == self.state.in_flight <= MAX_CONCURRENT

    @invariant()
    def no_window_a_remote_could_observe_is_overfull(self):
        intervals = self._intervals()
        for x in {start for start, _ in intervals}:
            touching = [1 for start, end in intervals if start <= x and end > x - WINDOW]
            assert len(touching) <= MAX_PER_WINDOW, (x, intervals)

    @invariant()
    def window_accounting_matches_the_model(self):
        counted = [1 for _, end in self._intervals() if end > self.now - WINDOW]
        assert len(counted) == self.state.window_used(self.now)


class FairnessMachine(RuleBasedStateMachine):
    """Round-robin alone: between two picks of X, every identifier that waited the whole
    time (queued, not in progress, not picked) must have been picked too."""

    def __init__(self):
        super().__init__()
        self.state = DomainThrottleState("d.example", 100, 100, WINDOW)
        self.waiting_since_pick: dict[str, set[str]] = {}  # X -> who waited since X's pick
        self.in_progress: set[str] = set()

    @rule(identifier=IDS)
    def enqueue(self, identifier):
        self.state.enqueue_identifier(identifier, ())

    @rule()
    def pick(self):
        identifier = self.state.next_ready_identifier()
        if identifier is None:
            assert not self._waiting()
            return
        starved = self.waiting_since_pick.get(identifier, set()) & self._waiting()
        assert not starved, f"{identifier} served again while {starved} kept waiting"
        self.in_progress.add(identifier)
        for watchers in self.waiting_since_pick.values():
            watchers.discard(identifier)
        self.waiting_since_pick[identifier] = self._waiting()

    @precondition(lambda self: self.in_progress)
    @rule(data=st.data(), remove=st.booleans())
    def release(self, data, remove):
        identifier = data.draw(st.sampled_from(sorted(self.in_progress)))
        self.in_progress.discard(identifier)
        if remove:
            self.state.remove_identifier(identifier)
            self.waiting_since_pick.pop(identifier, None)
            for watchers in self.waiting_since_pick.values():
                watchers.discard(identifier)
        else:
            self.state.mark_identifier_not_in_progress(identifier)

    def _waiting(self) -> set[str]:
        return {i for i in self.state.queued_identifiers() if i not in self.in_progress}


class QueueMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.queue = SyncQueue(backoff_scale=1.0)
        self.now = 1000.0
        self.pending: set[str] = set()
        self.running: set[str] = set()
        self.arrived_during: set[str] = set()  # running identifiers that got a new event

    @rule(identifier=IDS, delay=st.sampled_from([0.0, 0.5, 180.0]))
    def new_event(self, identifier, delay):
        self.pending.add(identifier)
        if identifier in self.running:
            self.arrived_during.add(identifier)
        self.queue.enqueue(identifier, delay, self.now)

    @rule(step=STEPS)
    def advance(self, step):
        self.now += step

    @rule(limit=st.one_of(st.none(), st.integers(1, 3)))
    def scan(self, limit):
        started = self.queue.pop_ready(self.now, limit)
        assert not set(started) & self.running
        self.running.update(started)

    @precondition(lambda self: self.running)
    @rule(data=st.data(), complete=st.booleans())
    def sync_ends(self, data, complete):
        """A complete sync released what was held when it looked; an event that arrived after
        that (during the sync) is still pending when the Scheduler hears "complete"."""
        identifier = data.draw(st.sampled_from(sorted(self.running)))
        self.running.discard(identifier)
        if complete and identifier not in self.arrived_during:
            self.pending.discard(identifier)
        self.arrived_during.discard(identifier)
        self.queue.finish(identifier, complete=complete, now=self.now)

    @rule(identifier=IDS)
    def released_by_a_push(self, identifier):
        self.pending.discard(identifier)  # the entry stays until its next sync says complete

    @invariant()
    def pending_identifiers_are_never_lost(self):
        missing = {i for i in self.pending if i not in self.queue}
        assert not missing

    @invariant()
    def wakeup_is_the_earliest_waiting_attempt(self):
        waiting = [
            self.queue.get(i).next_attempt
            for i in self.queue.identifiers()
            if not self.queue.get(i).in_progress
        ]
        assert self.queue.next_wakeup() == (min(waiting) if waiting else None)


PROFILE = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestThrottleLimits = ThrottleMachine.TestCase
TestThrottleLimits.settings = PROFILE
TestRoundRobinFairness = FairnessMachine.TestCase
TestRoundRobinFairness.settings = PROFILE
TestQueueKeepsPendingIdentifiers = QueueMachine.TestCase
TestQueueKeepsPendingIdentifiers.settings = PROFILE
