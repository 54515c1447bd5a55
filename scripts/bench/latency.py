#!/usr/bin/env python3
"""P1: release latency overhead of purgatory sync, precise wake-ups vs tick-only (S4.2, S4.4).

    .venv/bin/python scripts/bench/latency.py [--runs 50] [--delay 0.2] [--commits 20]

Two ``grasp-relay`` processes run side by side with the same settings, one with the S4.4
wake-up at each entry's ``next_attempt`` (the default) and one with ``--no-sync-precise-wakeups``
(only the periodic 1000 ms Tick, the original's polling: the baseline). Runs alternate between
them so both see the same machine noise.  ``--source DIR`` adds a third relay, an older tree's
(precise wake-ups too), to the same rotation: a before/after of P1 in one run, printed as the
ratio of the medians; ``--no-tick`` leaves the tick-only relay out (quicker before/after runs).

One run, for a fresh identifier each time:

1. build a small repository (``--commits`` commits, ``git fast-import``) *outside* the git server's
root; publish
   the announcement (it lists the relay and the git server) and open a live subscription for the
   state event's id;
2. wait a uniformly random fraction of the tick period (events arrive at any phase of the Tick);
3. ``rename`` the repository into the served root: from this instant T the objects are
   fetchable; publish the state event at once (answered ``purgatory:``, S1.2);
4. the relay waits the configured user delay (``--sync-default-delay-secs``), fetches, releases,
   and broadcasts the event: the subscription receives it at S;
5. measure the raw cost of the same transfer, twice: R = the relay's own fetch code
   (``grasp.git.fetch_oids``, run standalone in this process) and R_git = ``git fetch`` (CLI,
   protocol v2), each of the state's commit from the same server into an empty repository.

    release overhead = (first request - (T_ok + delay)) + (S - last byte)

from the git server's own log (a process of its own, ``_gitserve.py``; request start and last
byte in ``time.monotonic()``, one clock for the machine): *wait* is how late the relay's first
request to the server comes after the configured delay, counted from T_ok, when the relay's
``OK`` for the state event arrived (the relay's acceptance is a little earlier, so wait is
understated by at most that OK's delivery; the publish round trip is printed); *tail* is from
the server's last byte of the pack to the subscriber's receipt of the released event (indexing,
ref alignment, store, broadcast).  Everything between first request and last byte is the
transfer, which the relay's overhead does not include.

The older measure, S - T - delay - R, is still printed next to it.  It holds everything the
relay adds to the bare transfer: websocket and write policy, the
scheduling delay beyond the configured one (what precise wake-ups remove), the actors' messages,
release (ref alignment, store, broadcast). The table also shows S - T - delay - R_git; on small
repositories the git CLI's own process start-ups (git-remote-http, index-pack) make R_git larger
than the relay's whole in-process fetch, so that column can be negative.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from _common import (  # noqa: E402
    BenchError,
    Key,
    RelayClient,
    announcement,
    git_fetch_seconds,
    percentile,
    print_table,
    publish,
    relay_process,
    relay_process_of,
    scratch_dir,
)
from _gitserve import GitServerProcess  # noqa: E402

# _common puts the repository root on sys.path for the project imports after it
from _goal import goal_line  # noqa: E402

from grasp.git import FetchLimits, FetchPolicy, fetch_oids  # noqa: E402
from tests.support.gitrepo import init_bare, linear_history  # noqa: E402
from tests.support.relay import RelayProcess  # noqa: E402

POLICY = FetchPolicy(allow_private=True)


@dataclass
class Sample:
    """One run's instants, relative to T (seconds)."""

    served: float  # S - T
    raw_fetch: float  # R: grasp.git.fetch_oids alone
    git_fetch: float  # R_git: the git CLI
    relay_requests: int  # HTTP requests the relay sent for this identifier
    wait: float  # server's first request - (T_ok + delay)
    tail: float  # S - server's last byte
    publish_rtt: float  # T_ok - T: EVENT sent -> OK received

    def overhead(self, delay: float) -> float:
        return self.served - delay - self.raw_fetch

    def overhead_vs_git(self, delay: float) -> float:
        return self.served - delay - self.git_fetch

    @property
    def server_overhead(self) -> float:
        return self.wait + self.tail


@dataclass
class Mode:
    label: str
    tag: str
    relay: RelayProcess
    client: RelayClient
    samples: list[Sample] = field(default_factory=list)


class LatencyBench:
    def __init__(
        self,
        work: Path,
        server: GitServerProcess,
        delay: float,
        commits: int,
        tick: float,
        seed: int,
    ) -> None:
        self.work = work
        self.random = random.Random(seed)
        self.server = server
        self.served_root = work / "served"
        self.delay = delay
        self.commits = commits
        self.tick = tick
        self.key = Key()
        self.staging = work / "staging"
        self.staging.mkdir()

    def run_once(self, mode: Mode, index: int) -> Sample:
        identifier = f"{mode.tag}-{index:03d}"
        repo_name = f"{identifier}.git"
        staged = self.staging / repo_name
        tip = linear_history(staged, self.commits, files=self.commits)[-1]
        url = self.server.url(repo_name)
        publish(mode.client, announcement(self.key, identifier, mode.relay, [url]))
        state = self.key.state(identifier, {"refs/heads/main": tip})
        mode.client.send("REQ", identifier, {"ids": [state.id]})
        mode.client.expect("EOSE")

        gevent.sleep(self.random.uniform(0, self.tick))  # arrive at a random phase of the Tick
        self.server.take_log()  # earlier runs' requests do not count
        os.rename(staged, self.served_root / repo_name)
        fetchable = time.monotonic()
        publish(mode.client, state, "purgatory:")
        accepted = time.monotonic()
        frame = mode.client.recv()  # blocks until the relay releases and broadcasts
        received = time.monotonic()
        served = received - fetchable
        if frame[:2] != ["EVENT", identifier] or frame[2]["id"] != state.id:
            raise BenchError(f"expected the released state event, got {frame}")
        mode.client.send("CLOSE", identifier)
        log = [r for r in self.server.take_log(expect=1) if r["path"].startswith(f"/{repo_name}/")]
        if not log:
            raise BenchError(f"the git server saw no request for {repo_name}")
        wait = min(r["time"] for r in log) - (accepted + self.delay)
        tail = received - max(r["end"] for r in log)
        scratch = self.work / "scratch"
        target = init_bare(scratch / f"{identifier}-ours.git")
        began = time.perf_counter()
        if fetch_oids(target, url, [tip], policy=POLICY, limits=FetchLimits()) != [tip]:
            raise BenchError(f"fetch_oids did not fetch {tip} from {url}")
        raw = time.perf_counter() - began
        with_git = git_fetch_seconds(url, [tip], scratch / f"{identifier}-git.git")
        return Sample(served, raw, with_git, len(log), wait, tail, accepted - fetchable)


def summary_row(mode: Mode, delay: float) -> list[str]:
    ms = [s.overhead(delay) * 1e3 for s in mode.samples]
    vs_git = [s.overhead_vs_git(delay) * 1e3 for s in mode.samples]

    def p50(values: list[float]) -> str:
        return f"{statistics.median(values):.1f}"

    wait = [s.wait * 1e3 for s in mode.samples]
    tail = [s.tail * 1e3 for s in mode.samples]
    total = [s.server_overhead * 1e3 for s in mode.samples]
    return [
        mode.label,
        p50(wait),
        f"{percentile(wait, 95):.1f}",
        p50(tail),
        f"{percentile(tail, 95):.1f}",
        p50(total),
        f"{percentile(total, 95):.1f}",
        p50([s.publish_rtt * 1e3 for s in mode.samples]),
        p50(ms),
        f"{percentile(ms, 95):.1f}",
        f"{min(ms):.1f}",
        f"{max(ms):.1f}",
        p50(vs_git),
        f"{percentile(vs_git, 95):.1f}",
        p50([(s.served - delay) * 1e3 for s in mode.samples]),
        p50([s.raw_fetch * 1e3 for s in mode.samples]),
        p50([s.git_fetch * 1e3 for s in mode.samples]),
        f"{statistics.median(s.relay_requests for s in mode.samples):g}",
    ]


HEADER = [
    "mode",
    "wait p50",
    "p95",
    "tail p50",
    "p95",
    "wait+tail p50",
    "p95",
    "OK rtt p50",
    "S-T-delay-R p50",
    "p95",
    "min",
    "max",
    "vs R_git p50",
    "p95",
    "S-T-delay p50",
    "R p50",
    "R_git p50",
    "HTTP req/run",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per mode")
    parser.add_argument(
        "--delay",
        type=float,
        default=0.2,
        help="--sync-default-delay-secs of every relay (the configured delay)",
    )
    parser.add_argument("--commits", type=int, default=20, help="commits in each run's repository")
    parser.add_argument("--tick-ms", type=int, default=1000, help="--sync-loop-interval-ms (S4.4)")
    parser.add_argument("--seed", type=int, default=8, help="seed of the random arrival phases")
    parser.add_argument(
        "--source",
        type=Path,
        help="also run this older tree's relay (precise wake-ups), alternated with ours: "
        "a before/after in one run",
    )
    parser.add_argument(
        "--no-tick",
        action="store_true",
        help="leave out the tick-only relay (and P1's second goal row)",
    )
    return parser.parse_args()


def start_modes(stack: ExitStack, work: Path, args: argparse.Namespace) -> list[Mode]:
    """Ours (precise), then the older tree's (``--source``), then tick-only; each relay is
    stopped when ``stack`` closes."""
    common = (
        "--sync-default-delay-secs",
        str(args.delay),
        "--sync-loop-interval-ms",
        str(args.tick_ms),
    )
    legs = [("precise wake-ups (S4.4)", "precise", relay_process(work / "precise", *common))]
    if args.source is not None:
        options = ("--allow-private-fetch", "--log-level", "WARNING", "--event-rate-limit", "0")
        before = relay_process_of(work / "before", args.source.resolve(), *options, *common)
        legs.append((f"before ({args.source.name}, precise)", "before", before))
    if not args.no_tick:
        ticks = relay_process(work / "ticks", *common, "--no-sync-precise-wakeups")
        legs.append(("tick only (baseline)", "tick", ticks))
    modes = []
    for label, tag, process in legs:
        relay = stack.enter_context(process)
        client = RelayClient(relay.ws_url, timeout=30)
        stack.callback(client.close)
        modes.append(Mode(label, tag, relay, client))
    return modes


def run_modes(work: Path, args: argparse.Namespace) -> list[Mode]:
    """Every run index visits every mode, in a rotated order so none is always first."""
    with ExitStack() as stack:
        (work / "served").mkdir()
        server = stack.enter_context(GitServerProcess(work / "served", host="127.0.0.2"))
        modes = start_modes(stack, work, args)
        bench = LatencyBench(work, server, args.delay, args.commits, args.tick_ms / 1000, args.seed)
        for index in range(args.runs):
            shift = index % len(modes)
            for mode in modes[shift:] + modes[:shift]:
                mode.samples.append(bench.run_once(mode, index))
    return modes


def report_before_after(ours: Mode, before: Mode) -> None:
    """Ours / the older tree's, medians of the same run (noise shared, alternated)."""

    def ratio(pick: Callable[[Sample], float]) -> str:
        mine = statistics.median(pick(s) for s in ours.samples)
        theirs = statistics.median(pick(s) for s in before.samples)
        return f"{mine * 1e3:.1f} / {theirs * 1e3:.1f} ms = {mine / max(theirs, 1e-9):.2f}x"

    print(
        "ours / before (p50, same run): "
        f"wait+tail {ratio(lambda s: s.server_overhead)}, "
        f"tail {ratio(lambda s: s.tail)}, wait {ratio(lambda s: s.wait)}"
    )


def report_tick(precise: Mode, tick: Mode) -> bool:
    """P1's second row: precise wake-ups below the tick-only baseline (S4.4)."""
    ours, ticks = ([s.server_overhead for s in m.samples] for m in (precise, tick))
    ratio_median = statistics.median(ticks) / max(statistics.median(ours), 1e-9)
    ratio_p95 = percentile(ticks, 95) / max(percentile(ours, 95), 1e-9)
    met = statistics.median(ours) < statistics.median(ticks) and percentile(ours, 95) < percentile(
        ticks, 95
    )
    print(f"tick-only / precise: {ratio_median:.1f}x at the median, {ratio_p95:.1f}x at p95")
    print(
        "goal P1 (overhead with precise wake-ups below the tick-only baseline): "
        f"{'met' if met else 'NOT MET'}"
    )
    goal_line(
        "P1",
        "precise wake-ups below tick-only",
        f"{ratio_median:.0f}x at p50",
        "below",
        ratio_median,
        met,
    )
    return met


def main() -> int:
    args = parse_args()
    with scratch_dir("bench-latency-") as work:
        modes = run_modes(work, args)
    print_table(
        "P1 release overhead in ms = wait + tail, from the git server's log "
        f"({args.runs} runs per mode, delay "
        f"{args.delay * 1e3:g} ms, tick {args.tick_ms} ms, {args.commits}-commit repositories)",
        HEADER,
        [summary_row(mode, args.delay) for mode in modes],
        notes=[
            "wait: server's first request - (T_ok + delay); tail: S - server's last byte; T_ok: "
            "the relay's OK received;",
            "T: objects fetchable and event published; S: released event received by a live "
            "subscriber;",
            "R: grasp.git.fetch_oids of the same commit from the same server (standalone); "
            "R_git: the same with the git CLI.",
        ],
    )
    by_tag = {mode.tag: mode for mode in modes}
    if "before" in by_tag:
        report_before_after(by_tag["precise"], by_tag["before"])
    precise = [s.server_overhead for s in by_tag["precise"].samples]
    p50 = statistics.median(precise) * 1e3  # overheads are in seconds
    p95 = percentile(precise, 95) * 1e3
    goal_line(
        "P1",
        "release overhead p50 (wait + tail, server log)",
        f"{p50:.1f} ms (p95 {p95:.1f})",
        "<= 10 ms",
        p50 / 10,
        p50 <= 10,
    )
    if "tick" not in by_tag:
        return 0
    return 0 if report_tick(by_tag["precise"], by_tag["tick"]) else 1


if __name__ == "__main__":
    sys.exit(main())
