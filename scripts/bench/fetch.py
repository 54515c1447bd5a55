#!/usr/bin/env python3
"""The git data layer against the git CLI, side by side in one run (S7, S7.4).

    .venv/bin/python scripts/bench/fetch.py [--commits 2000] [--repeat 3] [--no-dulwich-copy]

A linear history (``--commits``, 200 files) is generated with ``git fast-import`` and served by
the real ``git http-backend`` through ``grasp.git.http_backend`` on 127.0.0.1.  Measured:

* full fetch of the tip into an empty repository: ``fetch_oids`` vs ``git fetch <url> <oid>``;
* incremental fetch: the target already holds the first half of the history, referenced only by
  a ``refs/nostr/*`` ref (which ``fetch_oids`` uses as a "have"; so does git);
* local copy of the whole history between two repositories: ``copy_objects`` vs a bare
  ``git fetch <path> <oid>`` (and dulwich's own local fetch, the road not taken);
* the worst gevent hub stall seen by a 5 ms ticker during each of our operations.

Times are medians of ``--repeat`` runs (min in brackets); bytes are what the server sent.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
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

from _goal import goal_line  # noqa: E402

from grasp.git import FetchLimits, FetchPolicy, copy_objects, fetch_oids  # noqa: E402
from tests.support.gitenv import scrub_git_env  # noqa: E402
from tests.support.gitrepo import init_bare, linear_history  # noqa: E402
from tests.support.gitserver import GitServer  # noqa: E402
from tests.support.gitstall import HubTicker  # noqa: E402

POLICY = FetchPolicy(allow_private=True)
LIMITS = FetchLimits()
NOSTR_REF = "refs/nostr/" + "b" * 64


def git(*args: str | Path) -> None:
    subprocess.run(["git", *map(str, args)], check=True, capture_output=True)


class Case:
    """Repeated runs of one operation: times, server bytes and the worst hub stall."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.bytes: list[int] = []
        self.stall = 0.0

    def run(
        self, fn: Callable[[], object], server: GitServer | None = None, *, tick: bool = False
    ) -> None:
        if server is not None:
            server.reset_log()
        with HubTicker() as ticker:
            start = time.perf_counter()
            fn()
            self.times.append(time.perf_counter() - start)
        if tick:
            self.stall = max(self.stall, ticker.worst)
        if server is not None:
            self.bytes.append(server.bytes_sent())

    def time(self) -> str:
        return f"{statistics.median(self.times):6.3f} s [{min(self.times):.3f}]"

    def ratio(self, other: "Case") -> float:
        return statistics.median(self.times) / statistics.median(other.times)

    def stall_ms(self) -> str:
        return f"{self.stall * 1e3:.1f} ms"


def fresh(work: Path, name: str) -> Path:
    path = work / name
    shutil.rmtree(path, ignore_errors=True)
    return init_bare(path)


def prepared_half(work: Path, name: str, source: Path, half: str) -> Path:
    """A target holding the first half of the history, referenced by a refs/nostr/* ref only."""
    target = fresh(work, name)
    git("--git-dir", target, "fetch", "--quiet", "--no-write-fetch-head", source, half)
    git("--git-dir", target, "update-ref", NOSTR_REF, half)
    return target


def git_fetch(target: Path, url: str, oid: str) -> None:
    git(
        "--git-dir",
        target,
        "-c",
        "protocol.version=2",
        "fetch",
        "-q",
        "--no-tags",
        "--no-write-fetch-head",
        url,
        oid,
    )


def dulwich_local_copy(source: Path, target: Path, oid: str) -> None:
    from dulwich.repo import Repo

    with Repo(str(source)) as src, Repo(str(target)) as dst:
        src.fetch(dst, determine_wants=lambda refs, depth=None: [oid.encode()])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--no-dulwich-copy", action="store_true", help="skip the slow dulwich local-copy column"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as tmp:
        work = Path(tmp)
        scrub_git_env(work / "home", name="Bench")
        served = work / "served"
        start = time.perf_counter()
        commits = linear_history(served / "big.git", args.commits)
        built = time.perf_counter() - start
        source = served / "big.git"
        pack_bytes = sum(p.stat().st_size for p in (source / "objects" / "pack").glob("*.pack"))
        tip, half = commits[-1], commits[len(commits) // 2 - 1]
        print(
            f"repository: {args.commits} commits, {pack_bytes / 2**20:.1f} MiB pack, "
            f"built in {built:.2f} s"
        )

        names = ("full", "full_git", "incr", "incr_git", "copy", "copy_git", "copy_dulwich")
        cases = {name: Case() for name in names}
        ours = partial(fetch_oids, policy=POLICY, limits=LIMITS)
        with GitServer(served) as server:
            url = server.url("big.git")
            for i in range(args.repeat):
                cases["full"].run(
                    partial(ours, fresh(work, f"full{i}.git"), url, [tip]), server, tick=True
                )
                cases["full_git"].run(
                    partial(git_fetch, fresh(work, f"fullgit{i}.git"), url, tip), server
                )
                target = prepared_half(work, f"incr{i}.git", source, half)
                cases["incr"].run(partial(ours, target, url, [tip]), server, tick=True)
                target = prepared_half(work, f"incrgit{i}.git", source, half)
                cases["incr_git"].run(partial(git_fetch, target, url, tip), server)
        for i in range(args.repeat):
            cases["copy"].run(
                partial(copy_objects, source, fresh(work, f"copy{i}.git"), [tip]), tick=True
            )
            plain_fetch = ("fetch", "-q", "--no-write-fetch-head", source, tip)
            cases["copy_git"].run(
                partial(git, "--git-dir", fresh(work, f"copygit{i}.git"), *plain_fetch)
            )
        if not args.no_dulwich_copy:
            target = fresh(work, "copydulwich.git")
            cases["copy_dulwich"].run(partial(dulwich_local_copy, source, target, tip), tick=True)

        print()
        header = ("operation", "grasp.git", "git CLI", "ratio", "bytes ours/git", "hub stall")
        print(
            f"{header[0]:<22} {header[1]:>18} {header[2]:>18} {header[3]:>7} "
            f"{header[4]:>16} {header[5]:>10}"
        )
        rows = (
            ("full fetch (HTTP)", "full", "full_git"),
            ("incremental (HTTP)", "incr", "incr_git"),
        )
        for label, mine, theirs in rows:
            a, b = cases[mine], cases[theirs]
            volume = (
                f"{statistics.median(a.bytes) / 1e6:.2f}/{statistics.median(b.bytes) / 1e6:.2f} MB"
            )
            print(
                f"{label:<22} {a.time():>18} {b.time():>18} {a.ratio(b):>6.2f}x "
                f"{volume:>16} {a.stall_ms():>10}"
            )
        a, b = cases["copy"], cases["copy_git"]
        print(
            f"{'local copy':<22} {a.time():>18} {b.time():>18} {a.ratio(b):>6.2f}x "
            f"{'-':>16} {a.stall_ms():>10}"
        )
        if cases["copy_dulwich"].times:
            d = cases["copy_dulwich"]
            label = "local copy (dulwich)"
            print(
                f"{label:<22} {d.time():>18} {'':>18} {d.ratio(b):>6.2f}x "
                f"{'-':>16} {d.stall_ms():>10}"
            )
        full, stall = cases["full"].ratio(cases["full_git"]), cases["full"].stall
        goal_line(
            "P5", "full fetch time ours / git CLI", f"{full:.2f}x", "<= 1.0x", full, full <= 1.0
        )
        goal_line(
            "P5",
            "worst hub stall during our fetch",
            f"{stall * 1e3:.1f} ms",
            "< 100 ms",
            stall / 0.1,
            stall < 0.1,
        )
        print()
        print(
            "ratio = ours / git CLI (median times); "
            "incremental = second half of the history on top of the first;"
        )
        print(
            "hub stall = worst extra delay of a 5 ms ticker greenlet during our operation "
            "(limit: 100 ms)."
        )


if __name__ == "__main__":
    main()
