"""Scenarios whose message traces are committed under tests/traces/ (S13.3).

Each scenario runs the real actor system over a MockSyncContext under a FakeClock with a
JSONL tracer, then checks its outcome. Regenerate the committed files with
``scripts/record-traces`` after a deliberate change of actor behaviour; the replay tests
(tests/actors/test_trace_replay.py) then pin the new behaviour.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from actors.clock import FakeClock
from actors.config import SyncConfig
from actors.fakes import MockSyncContext
from actors.observer import SyncObserver
from actors.trace.recorder import JsonlTracer

from .actor_harness import Harness

TRACES = Path(__file__).resolve().parents[1] / "traces"

# The configuration each scenario ran with; replay needs the same numbers.
CONFIGS: dict[str, SyncConfig] = {
    "burst": SyncConfig(max_concurrent=2, max_per_minute=3, rate_window=10.0),
    "partial_oids": SyncConfig(),
    "crash_restart": SyncConfig(max_concurrent=1),
    "why_held": SyncConfig(history_attempts=4),
}


def _run(
    ctx: MockSyncContext,
    name: str,
    path: Path,
    ids: list[str],
    observer=None,
    on_step: Callable[[float], None] | None = None,
) -> None:
    clock = FakeClock(start=1000.0)
    ctx._clock = clock.now
    path.unlink(missing_ok=True)
    harness = Harness(ctx, CONFIGS[name], clock, tracer=JsonlTracer(path), observer=observer)
    try:
        for identifier in ids:
            harness.system.enqueue_sync(identifier, "synced")
        harness.settle()
        for _ in range(4000):
            if not ctx.pending_identifiers():
                break
            if on_step is not None:
                on_step(clock.now())
            harness.advance(0.25)
        if ctx.pending_identifiers():
            raise AssertionError(f"{name}: still pending {ctx.pending_identifiers()}")
        harness.status()  # status asks are part of the trace too
        harness.system.history()
    finally:
        harness.system.stop()


def burst(path: Path) -> None:
    """20 identifiers over 3 domains, 2 concurrent and 3 per 10 s each: throttling galore."""
    ctx = MockSyncContext().with_fetch_delay(0.002)
    domains = ("alpha.example", "beta.example", "gamma.example")
    ids = [f"burst{i:02d}" for i in range(20)]
    for i, identifier in enumerate(ids):
        urls = [f"https://{d}/{identifier}.git" for d in domains]
        ctx.with_urls(urls, identifier=identifier)
        ctx.with_needed_oids([f"{identifier}-tip"], identifier=identifier)
        ctx.url_provides(urls[(i + 2) % 3], [f"{identifier}-tip"])
    _run(ctx, "burst", path, ids)


def partial_oids(path: Path) -> None:
    """One state needs three objects; one server has two of them, the other the third."""
    a, b = "https://first.example/repo.git", "https://second.example/repo.git"
    ctx = MockSyncContext().with_urls([a, b], identifier="split")
    ctx.with_needed_oids(["c1", "c2", "c3"], identifier="split")
    ctx.url_provides(a, ["c1", "c2"]).url_provides(b, ["c3"])
    _run(ctx, "partial_oids", path, ["split"])
    assert ctx.fetch_log == [(a, ("c1", "c2", "c3")), (b, ("c3",))], ctx.fetch_log


class _CrashOnce(SyncObserver):
    def __init__(self) -> None:
        self.armed = True

    def queue_size(self, size: int) -> None:
        if self.armed and size == 3:
            self.armed = False
            raise RuntimeError("injected: Scheduler crash")


def crash_restart(path: Path) -> None:
    """The Scheduler dies while five identifiers are queued; the Supervisor restarts it and
    the Releaser re-enqueues every identifier with held events."""
    ctx = MockSyncContext().with_fetch_delay(0.001)
    ids = [f"crash{i}" for i in range(5)]
    for identifier in ids:
        url = f"https://solo.example/{identifier}.git"
        ctx.with_urls([url], identifier=identifier)
        ctx.with_needed_oids([f"{identifier}-tip"], identifier=identifier)
        ctx.url_provides(url, [f"{identifier}-tip"])
    _run(ctx, "crash_restart", path, ids, observer=_CrashOnce())


GONE = "https://gone.example/held.git"
LACKING = "https://lacking.example/held.git"
OLD = "git://old.example/held.git"


def why_held(path: Path) -> None:
    """S18: one identifier, three URLs — a 404, a server without the commit and a ``git://``
    URL the policy refuses. Two attempts fail; then the commit is pushed to the lacking server
    and the third attempt releases. The refused URL is asked once and never again."""
    ctx = MockSyncContext().with_urls([GONE, LACKING, OLD], identifier="held")
    ctx.with_needed_oids(["tip"], identifier="held")
    ctx.url_fails(GONE, "not_found", "HTTP 404").url_fails(OLD, "policy", "git:// is disabled")

    def push_after_two_attempts(now: float) -> None:
        if now >= 1030.0:
            ctx.url_provides(LACKING, ["tip"])

    _run(ctx, "why_held", path, ["held"], on_step=push_after_two_attempts)
    expected = [GONE, LACKING, OLD, GONE, LACKING, GONE, LACKING]
    assert ctx.fetched_urls == expected, ctx.fetched_urls


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "burst": burst,
    "partial_oids": partial_oids,
    "crash_restart": crash_restart,
    "why_held": why_held,
}


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    for name in names:
        path = TRACES / f"{name}.jsonl"
        SCENARIOS[name](path)
        print(f"wrote {path} ({sum(1 for _ in path.open())} lines)")
    return 0


if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()
    sys.exit(main(sys.argv[1:]))
