#!/usr/bin/env python3
"""The git data layer against the git CLI, alternated, the server in a process of its own (S7.4).

    .venv/bin/python scripts/bench/fetch.py [--commits 2000] [--blob-mb 50] [--repeat 10]

Three repository shapes, each served by the real ``git http-backend`` through
``grasp.git.http_backend`` in a separate process (``_gitserve.py``) on 127.0.0.1:

* ``one commit``: the target already holds the history up to the last commit, referenced only
  by a ``refs/nostr/*`` ref (which ``fetch_oids`` uses as a "have"; so does git); one commit
  on top is fetched;
* ``history``: the whole ``--commits`` linear history (200 files) into an empty repository;
* ``blob``: one commit holding one ``--blob-mb`` MB random (incompressible) file.

Our side is ``fetch_oids`` in this process, the git CLI's is
``git -c protocol.version=2 fetch --no-tags --no-write-fetch-head <url> <oid>`` (a child);
neither shares a process or a hub with the server.  The two alternate (ours first on even
repeats, git first on odd ones).  Per fetch the server's log gives the HTTP requests and the
bytes sent.  Printed: median and p95 (nearest rank) times, ratio of medians ours / git, the
requests per fetch of each side, the worst gevent hub stall seen by a 5 ms ticker during our
fetches, and the GOAL lines (ours <= git on every shape, stall < 100 ms).

``--hostile N`` adds N fetches from an endless protocol-v2 ``ls-refs`` answer at the default
caps (32 MiB, S14.1; the server in this process, as in tests/git/test_advert_fetch.py): the
time until ``too_large`` and the worst hub stall, which the test suite no longer asserts.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _gitserve import GitServerProcess  # noqa: E402
from _goal import goal_line  # noqa: E402

from grasp.git import FetchError, FetchLimits, FetchPolicy, fetch_oids  # noqa: E402
from tests.support.endless_refs import EndlessRefsServer  # noqa: E402
from tests.support.gitenv import scrub_git_env  # noqa: E402
from tests.support.gitrepo import init_bare, linear_history  # noqa: E402
from tests.support.gitstall import HubTicker  # noqa: E402

POLICY = FetchPolicy(allow_private=True)
LIMITS = FetchLimits()
NOSTR_REF = "refs/nostr/" + "b" * 64


def git(*args: str | Path, input: bytes | None = None) -> None:
    subprocess.run(["git", *map(str, args)], check=True, capture_output=True, input=input)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class Side:
    """One side's fetches of one shape: times, requests and bytes from the server's log."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.requests: list[int] = []
        self.bytes: list[int] = []
        self.stall = 0.0

    def run(self, fn: Callable[[], object], server: GitServerProcess, *, tick: bool) -> None:
        server.take_log()  # nothing of the preparation counts
        with HubTicker() as ticker:
            start = time.perf_counter()
            fn()
            self.times.append(time.perf_counter() - start)
        if tick:
            self.stall = max(self.stall, ticker.worst)
        log = server.take_log(expect=1)
        self.requests.append(len(log))
        self.bytes.append(sum(r["bytes_sent"] for r in log))

    def median(self) -> float:
        return statistics.median(self.times)


class Shape:
    """A served repository, the oid to fetch and how to prepare an empty or primed target."""

    def __init__(self, label: str, repo: str, oid: str, have: str | None) -> None:
        self.label, self.repo, self.oid, self.have = label, repo, oid, have
        self.ours, self.git = Side(), Side()

    def target(self, work: Path, name: str, served: Path) -> Path:
        path = work / name
        shutil.rmtree(path, ignore_errors=True)
        init_bare(path)
        if self.have is not None:
            git(
                "--git-dir",
                path,
                "fetch",
                "-q",
                "--no-write-fetch-head",
                served / self.repo,
                self.have,
            )
            git("--git-dir", path, "update-ref", NOSTR_REF, self.have)
        return path


def blob_repository(path: Path, megabytes: int) -> str:
    """One commit holding one incompressible file of ``megabytes`` MB; returns the commit id."""
    init_bare(path)
    data = os.urandom(megabytes * 1_000_000)
    message = b"one big blob\n"
    stream = b"".join(
        [
            b"commit refs/heads/main\nmark :1\n",
            b"committer Bench <bench@example.invalid> 1700000000 +0000\n",
            b"data %d\n%s" % (len(message), message),
            b"M 100644 inline blob.bin\n",
            b"data %d\n%s\n" % (len(data), data),
        ]
    )
    git("--git-dir", path, "fast-import", "--quiet", input=stream)
    out = subprocess.run(
        ["git", "--git-dir", str(path), "rev-parse", "refs/heads/main"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def git_fetch(target: Path, url: str, oid: str) -> None:
    git(
        "--git-dir", target, "-c", "protocol.version=2", "fetch", "-q", "--no-tags",
        "--no-write-fetch-head", url, oid,
    )  # fmt: skip


def measure(shape: Shape, server: GitServerProcess, work: Path, served: Path, repeat: int) -> None:
    url = server.url(shape.repo)
    for i in range(repeat):
        ours_target = shape.target(work, f"ours{i}.git", served)
        git_target = shape.target(work, f"git{i}.git", served)
        ours = partial(fetch_oids, ours_target, url, [shape.oid], policy=POLICY, limits=LIMITS)
        runs = [
            partial(shape.ours.run, ours, server, tick=True),
            partial(
                shape.git.run, partial(git_fetch, git_target, url, shape.oid), server, tick=False
            ),
        ]
        for run in runs if i % 2 == 0 else reversed(runs):
            run()
        shutil.rmtree(ours_target)
        shutil.rmtree(git_target)


def report(shapes: list[Shape]) -> None:
    print()
    print(
        f"{'shape':<12} {'ours p50':>9} {'p95':>7} {'git p50':>9} {'p95':>7} {'ratio':>6} "
        f"{'req/fetch ours,git':>19} {'MB ours/git':>13} {'hub stall':>10}"
    )
    for s in shapes:
        a, b = s.ours, s.git
        requests = f"{statistics.median(a.requests):g}, {statistics.median(b.requests):g}"
        if len(set(a.requests)) > 1 or len(set(b.requests)) > 1:
            requests += "*"
        volume = f"{statistics.median(a.bytes) / 1e6:.2f}/{statistics.median(b.bytes) / 1e6:.2f}"
        print(
            f"{s.label:<12} {a.median():8.3f}s {p95(a.times):6.3f}s {b.median():8.3f}s "
            f"{p95(b.times):6.3f}s {a.median() / b.median():5.2f}x {requests:>19} "
            f"{volume:>13} {a.stall * 1e3:8.1f}ms"
        )
    print()
    print(
        "times: wall clock of one fetch as the fetching side sees it; ratio = median ours / "
        "median git;\nreq/fetch: HTTP requests the server logged per fetch (median; * = not "
        "the same every time);\nhub stall: worst extra delay of a 5 ms ticker greenlet during "
        "our fetches."
    )
    for s in shapes:
        ratio = s.ours.median() / s.git.median()
        goal_line("P5", f"fetch time ours / git CLI, {s.label}", f"{ratio:.2f}x", "<= 1.0x",
                  ratio, ratio <= 1.0)  # fmt: skip
    stall = max(s.ours.stall for s in shapes)
    goal_line("P5", "worst hub stall during our fetch", f"{stall * 1e3:.1f} ms", "< 100 ms",
              stall / 0.1, stall < 0.1)  # fmt: skip
    extra = max(statistics.median(s.ours.requests) - statistics.median(s.git.requests)
                for s in shapes)  # fmt: skip
    goal_line("P5", "HTTP requests per fetch ours - git CLI (worst shape)", f"{extra:+g}",
              "<= 0", extra, extra <= 0)  # fmt: skip


def hostile(target_root: Path, runs: int) -> None:
    """Fetches from an endless ls-refs answer at the default caps: time to the cap, stall."""
    times: list[float] = []
    stalls: list[float] = []
    for i in range(runs):
        target = init_bare(target_root / f"hostile{i}.git")
        with EndlessRefsServer("ls-refs") as server, HubTicker() as ticker:
            start = time.perf_counter()
            try:
                fetch_oids(target, server.url("x.git"), ["1" * 40], policy=POLICY, limits=LIMITS)
            except FetchError as exc:
                if exc.reason != "too_large":
                    raise
            else:
                raise RuntimeError("the endless advertisement was accepted")
            times.append(time.perf_counter() - start)
        stalls.append(ticker.worst)
        shutil.rmtree(target)
    print(
        f"\nendless ls-refs, default caps ({runs} runs, server in this process): too_large "
        f"after {statistics.median(times):.2f} s median ({max(times):.2f} s max), worst hub "
        f"stall {max(stalls) * 1e3:.1f} ms (median of the runs' worst "
        f"{statistics.median(stalls) * 1e3:.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--blob-mb", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--hostile", type=int, default=0, metavar="N")
    parser.add_argument(
        "--shapes", default="one,history,blob", help="comma-separated subset of one,history,blob"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as tmp:
        work = Path(tmp)
        scrub_git_env(work / "home", name="Bench")
        served = work / "served"
        start = time.perf_counter()
        commits = linear_history(served / "history.git", args.commits)
        blob_tip = blob_repository(served / "blob.git", args.blob_mb)
        print(
            f"repositories: {args.commits} commits, one {args.blob_mb} MB blob; built in "
            f"{time.perf_counter() - start:.1f} s; {args.repeat} repeats per side and shape"
        )
        every = {
            "one": Shape("one commit", "history.git", commits[-1], commits[-2]),
            "history": Shape("history", "history.git", commits[-1], None),
            "blob": Shape("blob", "blob.git", blob_tip, None),
        }
        shapes = [every[name] for name in args.shapes.split(",")]
        with GitServerProcess(served) as server:
            for shape in shapes:
                measure(shape, server, work / "targets", served, args.repeat)
        report(shapes)
        if args.hostile:
            hostile(work / "targets", args.hostile)


if __name__ == "__main__":
    main()
