#!/usr/bin/env python3
"""S18.1: what the sync history costs — memory when full, recording, and answering a status ask.

Fills ``actors.history.SyncHistory`` to its default bounds (1000 identifiers × 20 attempts, each
with three URLs) and prints: bytes held (tracemalloc, identifier and URL strings included),
µs per recorded attempt, the time to build the report ``/status`` asks for (the 50 most
relevant of 10,000 queued identifiers: ``HISTORY_SHOWN``) and the size of that report as
``/status.json`` JSON.

    .venv/bin/python scripts/bench/history.py [--identifiers 1000] [--attempts 20]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.history import SyncHistory, most_relevant  # noqa: E402
from actors.queue import SyncQueueEntry  # noqa: E402
from grasp.relay.observe.status import HISTORY_SHOWN, _history_entry  # noqa: E402
from messages.scheduler import FetchAttempted  # noqa: E402

REASONS = ("not_found", "missing_objects", "timeout")


def attempt(n: int, identifier: str, url: int, now: float) -> FetchAttempted:
    reason = REASONS[url]
    return FetchAttempted(
        identifier,
        f"https://forge{url}.example/{identifier}.git",
        outcome="failed",
        reason=reason,
        detail="HttpStatusError: HTTP 404 for https://forge0.example/x.git/info/refs" * (url == 0),
        missing=1,
        started=now,
        seconds=0.25,
    )


def fill(identifiers: int, attempts: int) -> tuple[SyncHistory, float, int]:
    history = SyncHistory(attempts, identifiers)
    names = [f"repository-{i:05d}" for i in range(identifiers)]
    now, recorded = 0.0, 0
    started = time.perf_counter()
    for round_ in range(attempts):
        for name in names:
            for url in range(3):
                now += 0.001
                history.record(attempt(round_, name, url, now), now)
                recorded += 1
    return history, (time.perf_counter() - started) / recorded * 1e6, recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identifiers", type=int, default=1000)
    parser.add_argument("--attempts", type=int, default=20)
    args = parser.parse_args()

    history, per_record, recorded = fill(args.identifiers, args.attempts)  # timed untraced
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    history = fill(args.identifiers, args.attempts)[0]
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    kept = args.identifiers * args.attempts
    print(f"history full: {args.identifiers:,} identifiers x {args.attempts} attempts kept")
    print(f"  memory          {held / 2**20:8.1f} MiB  ({held / kept:,.0f} bytes per attempt kept)")
    print(f"  record()        {per_record:8.2f} µs per attempt ({recorded:,} recorded)")

    now = 10_000.0
    queued = {f"repository-{i:05d}": now + i % 120 for i in range(10 * args.identifiers)}
    entries = {i: SyncQueueEntry(t, attempt_count=3) for i, t in queued.items()}
    times = []
    for _ in range(7):
        started = time.perf_counter()
        chosen = most_relevant(queued, history, HISTORY_SHOWN)
        reports = [history.report(i, now, entries.get(i)) for i in chosen]
        times.append(time.perf_counter() - started)
    body = json.dumps([_history_entry(r, 1.7e9) for r in reports], separators=(",", ":"))
    print(f"status ask over {len(queued):,} queued identifiers, {HISTORY_SHOWN} shown:")
    print(f"  report          {statistics.median(times) * 1e3:8.2f} ms (median of 7)")
    print(f"  JSON            {len(body) / 1024:8.1f} KiB in /status.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
