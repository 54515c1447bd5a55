#!/usr/bin/env python3
"""P7 detail: hub time per held announcement's empty repository, in place vs from the pool.

    .venv/bin/python scripts/bench/empty_repos.py [--repos 300] [--rounds 4] [--dir DIR]

In one gevent-patched process, alternated ``--rounds`` times: ``--repos`` repositories made by
``create_bare_repo`` (three ``mkdir``, two links, a rename, on the hub) and as many taken from an
``EmptyRepoPool`` of 64 refilled by its thread (one rename on the hub). Between two
repositories the hub sleeps 2 ms, as it serves other events during intake, so the refill thread
gets its turn. Figure: hub time inside the call per repository (the refill thread's own time is
not in it: it is what the pool moves off the hub, and relay CPU in intake.py still counts it).
No goal line: P7's goal is intake.py's ratio; this shows where the announcement's share went.
``--dir`` picks the file system (default: a new directory in /var/tmp).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from grasp.git.repo_pool import EmptyRepoPool  # noqa: E402
from grasp.git.repos import create_bare_repo  # noqa: E402

NPUB = "npub1" + "q" * 58
FILL_DEADLINE_SECS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=300, help="repositories per round and way")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="empty-repos-bench-", dir=args.dir))
    pool = EmptyRepoPool(base / "repos", 64)
    try:
        pool.start()
        deadline = time.monotonic() + FILL_DEADLINE_SECS
        while pool.ready < pool.size and time.monotonic() < deadline:
            gevent.sleep(0.01)
        ways = {"in place": create_bare_repo, "pool": pool.create}
        spent: dict[str, list[float]] = {name: [] for name in ways}
        n = 0
        for _ in range(args.rounds):
            for name, create in ways.items():
                total = 0.0
                for _ in range(args.repos):
                    n += 1
                    path = base / "repos" / NPUB / f"r{n}.git"
                    began = time.perf_counter()
                    create(path)
                    total += time.perf_counter() - began
                    gevent.sleep(0.002)
                spent[name].append(1e6 * total / args.repos)
    finally:
        pool.close()
        shutil.rmtree(base, ignore_errors=True)
    print(f"hub microseconds per empty repository, {args.rounds} alternated rounds of {args.repos}")
    for name, values in spent.items():
        print(f"{name:10} {' '.join(f'{v:7.0f}' for v in values)}")
    ratios = [p / i for p, i in zip(spent["pool"], spent["in place"], strict=True)]
    print(f"{'pool/in place':10} {' '.join(f'{r:7.2f}' for r in ratios)}")


if __name__ == "__main__":
    main()
