#!/usr/bin/env python3
"""P4: the actor system's costs — CPU per identifier through the real actors, tick time vs
ready entries, tell throughput, memory per entry.

The headline figure drives the real Scheduler, DomainThrottles, FetchActors and Releaser over the
mock port (no network, no git): CPU seconds of this process from the first ``EnqueueSync`` until
the last ``SyncFinished``, divided by the identifiers synced. The queue-only row (``pop_ready``
alone) is kept next to it: it is what the Scheduler's own policy costs, not what a sync costs.

Prints tables; compares side by side in one run (heap scan vs the original's full scan, actor
tells vs a bare pykka actor), because these machines are noisy.

    .venv/bin/python scripts/bench/scheduler.py [--identifiers 2000] [--queued 100000]
        [--messages 20000]
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import gc  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gevent.event  # noqa: E402
import pykka  # noqa: E402
from _goal import goal_line  # noqa: E402

from actors import system as actor_system  # noqa: E402
from actors.clock import FakeClock  # noqa: E402
from actors.config import SyncConfig  # noqa: E402
from actors.effects import Envelope  # noqa: E402
from actors.fakes import MockSyncContext  # noqa: E402
from actors.names import SCHEDULER, throttle_name  # noqa: E402
from actors.observer import SyncObserver  # noqa: E402
from actors.queue import SyncQueue  # noqa: E402
from messages.lifecycle import Ping  # noqa: E402
from messages.scheduler import EnqueueSync  # noqa: E402
from messages.throttle import RequestDone  # noqa: E402

NOW = 1000.0


def _queue(queued: int, ready: int) -> SyncQueue:
    queue = SyncQueue(SyncConfig().backoff_scale)
    for i in range(queued - ready):
        queue.enqueue(f"later-{i:06d}", 3600.0 + i * 0.001, NOW)
    for i in range(ready):
        queue.enqueue(f"ready-{i:06d}", 0.0, NOW)
    return queue


def _naive_tick(queue: SyncQueue, now: float) -> list[str]:
    """The original's loop: look at every entry on every tick."""
    ready = []
    for identifier in queue.identifiers():
        entry = queue.get(identifier)
        if entry.is_ready(now):
            entry.in_progress = True
            ready.append(identifier)
    return ready


def _time_tick(queued: int, ready: int, naive: bool, repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        queue = _queue(queued, ready)
        gc.collect()
        start = time.perf_counter()
        got = _naive_tick(queue, NOW) if naive else queue.pop_ready(NOW)
        queue.next_wakeup()
        samples.append(time.perf_counter() - start)
        assert len(got) == ready
    return statistics.median(samples)


class _Finished(SyncObserver):
    """Counts finished syncs and wakes the benchmark at the last one (no polling)."""

    def __init__(self, expected: int) -> None:
        self.expected, self.count = expected, 0
        self.done = gevent.event.Event()

    def sync_finished(self, identifier: str, complete: bool) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


def actors_table(identifiers: int, domains: int = 10) -> tuple[float, float]:
    """CPU per identifier from enqueue to SyncFinished through the real actors (goal P4)."""
    ctx = MockSyncContext()
    ids = [f"repo-{i:05d}" for i in range(identifiers)]
    for i, identifier in enumerate(ids):
        url = f"https://host{i % domains}.example/{identifier}.git"
        ctx.with_urls([url], identifier=identifier).with_needed_oids([f"{i:040x}"], identifier)
        ctx.url_provides(url, [f"{i:040x}"])
    finished = _Finished(identifiers)
    config = SyncConfig(
        synced_delay=0.0, max_concurrent=10_000, max_per_minute=10**9, max_running_syncs=10_000
    )
    system = actor_system.start(ctx, config, observer=finished)
    try:
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        for identifier in ids:
            system.enqueue_sync(identifier, "synced")
        if not finished.done.wait(timeout=300):
            raise SystemExit(f"only {finished.count} of {identifiers} syncs finished in 300 s")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        system.stop()
    assert ctx.released == set(ids), "not every identifier was released"
    queue = _queue(identifiers, identifiers)
    start = time.process_time()
    queue.pop_ready(NOW)
    queue_cpu = time.process_time() - start
    per_id, queue_per_id = cpu / identifiers, queue_cpu / identifiers
    print(
        f"\nThrough the real actors: {identifiers:,} identifiers over {domains} domains, mock "
        "port, limits lifted"
    )
    print(f"{'path':<44} {'CPU/identifier':>15} {'wall total':>11}")
    print(f"{'enqueue -> FetchActor -> SyncFinished':<44} {per_id * 1e3:>13.3f}ms {wall:>10.2f}s")
    print(f"{'queue only (SyncQueue.pop_ready)':<44} {queue_per_id * 1e3:>13.4f}ms {'-':>11}")
    goal = "met" if per_id <= 0.0001 else "NOT MET"
    print(f"goal P4 (<= 0.1 ms CPU per identifier through the actors): {goal}")
    goal_line(
        "P4",
        "CPU per identifier, enqueue -> SyncFinished",
        f"{per_id * 1e3:.3f} ms",
        "<= 0.1 ms",
        per_id / 0.0001,
        per_id <= 0.0001,
    )
    return per_id, queue_per_id


def tick_table(queued: int) -> None:
    print(f"\nTick cost with {queued:,} queued identifiers (median of 5)")
    print(f"{'ready':>8} {'heap tick':>12} {'full scan':>12} {'scan/heap':>10} {'per ready':>11}")
    for ready in (10, 1_000, 10_000):
        heap = _time_tick(queued, ready, naive=False)
        scan = _time_tick(queued, ready, naive=True)
        print(
            f"{ready:>8,} {heap * 1e3:>10.3f}ms {scan * 1e3:>10.3f}ms "
            f"{scan / heap:>9.1f}x {heap / ready * 1e6:>9.2f}µs"
        )


class _Bare(pykka.ThreadingActor):
    def on_receive(self, message):
        return None


def _throughput(send, barrier, messages: int) -> float:
    start = time.perf_counter()
    for i in range(messages):
        send(i)
    barrier()
    return messages / (time.perf_counter() - start)


def tell_table(messages: int) -> None:
    ctx = MockSyncContext()
    system = actor_system.start(ctx, SyncConfig(), FakeClock(NOW))
    throttle = system.directory.lookup(throttle_name("bench.example"))
    bare = _Bare.start()
    try:
        scheduler = system.directory.lookup(SCHEDULER)

        def ping(ref):
            return lambda: ref.ask(Envelope("bench", Ping(), ask=True))

        rows = [
            ("bare pykka actor", lambda i: bare.tell(i), lambda: bare.ask("x")),
            (
                "Scheduler EnqueueSync",
                lambda i: scheduler.tell(Envelope("bench", EnqueueSync(f"id{i % 5000}", "user"))),
                ping(scheduler),
            ),
            (
                "DomainThrottle RequestDone",
                lambda i: throttle.tell(Envelope("bench", RequestDone())),
                ping(throttle),
            ),
        ]
        print(f"\nTell throughput ({messages:,} messages, then one ask as a barrier)")
        print(f"{'target':<28} {'msg/s':>10} {'vs bare':>8}")
        base = None
        for name, send, barrier in rows:
            rate = _throughput(send, barrier, messages)
            base = base or rate
            print(f"{name:<28} {rate:>10,.0f} {rate / base:>7.2f}x")
    finally:
        bare.stop()
        system.stop()


def memory_table(queued: int) -> None:
    names = [f"identifier-{i:06d}" for i in range(queued)]  # allocated outside the measurement
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    queue = SyncQueue(SyncConfig().backoff_scale)
    for i, name in enumerate(names):
        queue.enqueue(name, 60.0 + i * 0.001, NOW)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    used = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    print(f"\nMemory per queued identifier ({queued:,} entries, identifier strings excluded)")
    print(f"{'bytes/identifier':>18} {'total MiB':>10}")
    print(f"{used / queued:>18.0f} {used / 2**20:>10.1f}")
    assert len(queue) == queued


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identifiers", type=int, default=2000)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    actors_table(args.identifiers)
    tick_table(args.queued)
    tell_table(args.messages)
    memory_table(args.queued)
    return 0


if __name__ == "__main__":
    sys.exit(main())
