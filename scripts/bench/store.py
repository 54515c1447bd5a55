#!/usr/bin/env python3
"""Benchmark the Nostr event layer and the event store (SQLite or PostgreSQL); prints tables.

    .venv/bin/python scripts/bench/store.py [--events N] [--store-events N]
        [--database URL | --throwaway-postgres]

1. Verification: ``Event.from_json`` (shape + id + BIP-340) against its parts and a bare
   coincurve ``verify`` — the baseline python-ecosystem.md §4 measured (22.7k/s raw, 14.0k/s full).
2. Storage: ``EventStore.save`` of regular, replaceable and addressable events (one transaction
   each; SQLite: WAL, synchronous=NORMAL), the same from 20 greenlets at once, and ``query`` of
   typical REQ filters on the filled store.

The store is a new SQLite file in a temporary directory, or with ``--database URL`` the store
``grasp.store.open_store`` opens for that URL (a PostgreSQL database must be empty: the events
are deterministic), or with ``--throwaway-postgres`` a durable (fsync on) PostgreSQL server of
tests/support/postgres.py started for the run and removed after it.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gevent  # noqa: E402
from coincurve import PublicKeyXOnly  # noqa: E402

from grasp.nostr.event import Event, compute_event_id, sign_event  # noqa: E402
from grasp.nostr.filters import Filter  # noqa: E402
from grasp.store import EventStore, open_store  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

GREENLETS = 20


def rate(count: int, func: Callable[[], object]) -> tuple[float, float]:
    """Run ``func`` once (it processes ``count`` items); return (items/s, seconds)."""
    start = time.perf_counter()
    func()
    elapsed = time.perf_counter() - start
    return count / elapsed, elapsed


def table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    print(f"\n{title}")
    line = "  ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=False))
    print(line)
    print("-" * len(line))
    for row in rows:
        print(
            "  ".join(
                f"{str(c):>{w}}" if i else f"{str(c):<{w}}"
                for i, (c, w) in enumerate(zip(row, widths, strict=False))
            )
        )


def bench_verification(n: int) -> None:
    secrets = [f"{i + 1:064x}" for i in range(200)]
    events = [
        sign_event(secrets[i % len(secrets)], 1, [["t", "bench"], ["p", "ab" * 32]], f"note {i} ☃")
        for i in range(n)
    ]
    objs = [e.to_json() for e in events]
    raw = [(bytes.fromhex(e.pubkey), bytes.fromhex(e.sig), bytes.fromhex(e.id)) for e in events]
    keys = {pk: PublicKeyXOnly(pk) for pk, _, _ in raw}

    results = {
        "coincurve verify only (keys pre-parsed)": rate(
            n, lambda: [keys[p].verify(s, m) for p, s, m in raw]
        ),
        "coincurve parse key + verify": rate(
            n, lambda: [PublicKeyXOnly(p).verify(s, m) for p, s, m in raw]
        ),
        "compute_event_id (json + sha256)": rate(
            n,
            lambda: [
                compute_event_id(e.pubkey, e.created_at, e.kind, e.tags, e.content) for e in events
            ],
        ),
        "Event.from_json (full validation)": rate(n, lambda: [Event.from_json(o) for o in objs]),
    }
    base = results["Event.from_json (full validation)"][0]
    rows = [
        (name, f"{r:,.0f}", f"{s * 1000:.0f}", f"{r / base:.2f}x")
        for name, (r, s) in results.items()
    ]
    table(
        f"Event verification, {n} events, 200 authors (1 core)",
        ("step", "events/s", "total ms", "vs from_json"),
        rows,
    )


def _fake(n: int, kind: int, d: str | None, pubkeys: list[str], t: int) -> Event:
    """Well-formed but unsigned: the store trusts its caller; signing would dominate the setup."""
    pubkey = pubkeys[n % len(pubkeys)]
    tags: tuple[tuple[str, ...], ...] = (
        ("t", f"topic{n % 50}"),
        ("p", pubkeys[(n * 7) % len(pubkeys)]),
    )
    if d is not None:
        tags = (("d", d),) + tags
    event_id = compute_event_id(pubkey, t, kind, tags, f"content {n}")
    return Event(event_id, pubkey, t, kind, tags, f"content {n}", "0" * 128)


def bench_store(n: int, database: str | None) -> None:
    rng = random.Random(7)
    pubkeys = [f"{rng.getrandbits(256):064x}" for _ in range(500)]
    regular = [_fake(i, 1, None, pubkeys, 1_700_000_000 + i) for i in range(n)]
    replaceable = [_fake(i, 10002, None, pubkeys, 1_700_000_000 + i) for i in range(n // 5)]
    addressable = [
        _fake(i, 30618, f"repo{i % 300}", pubkeys, 1_700_000_000 + i) for i in range(n // 5)
    ]
    concurrent = [_fake(i, 7, None, pubkeys, 1_600_000_000 + i) for i in range(n // 4)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_store(database or Path(tmp) / "events.sqlite3") as store,
    ):
        if store.count():
            raise SystemExit(f"{store.location} already holds events: give an empty database")
        rows = []
        for name, events in (
            ("regular (kind 1)", regular),
            ("replaceable (10002)", replaceable),
            ("addressable (30618)", addressable),
        ):
            per_s, secs = rate(len(events), lambda events=events: [store.save(e) for e in events])
            rows.append(
                (f"save {name}", len(events), f"{per_s:,.0f}", f"{secs * 1e6 / len(events):.0f}")
            )
        dup_rate, dup_secs = rate(len(regular), lambda: [store.save(e) for e in regular])
        rows.append(
            (
                "save duplicate",
                len(regular),
                f"{dup_rate:,.0f}",
                f"{dup_secs * 1e6 / len(regular):.0f}",
            )
        )
        per_s, secs = rate(len(concurrent), lambda: save_concurrently(store, concurrent))
        rows.append(
            (
                f"save regular (kind 7), {GREENLETS} greenlets",
                len(concurrent),
                f"{per_s:,.0f}",
                f"{secs * 1e6 / len(concurrent):.0f}",
            )
        )
        table(
            f"EventStore.save on {store.location}, one transaction per event "
            f"(store ends with {store.count():,} events)",
            ("operation", "events", "events/s", "us/event"),
            rows,
        )
        bench_queries(store, regular, pubkeys)


def save_concurrently(store: EventStore, events: list[Event]) -> None:
    jobs = [
        gevent.spawn(lambda chunk: [store.save(e) for e in chunk], events[i::GREENLETS])
        for i in range(GREENLETS)
    ]
    gevent.joinall(jobs, timeout=600, raise_error=True)


def bench_queries(store: EventStore, regular: list[Event], pubkeys: list[str]) -> None:
    filters = {
        "ids (1 id)": lambda i: Filter(ids=[regular[i * 37 % len(regular)].id]),
        "authors (1), limit 20": lambda i: Filter(authors=[pubkeys[i % len(pubkeys)]], limit=20),
        "kinds [1], limit 100": lambda i: Filter(kinds=[1], limit=100),
        "#t (1 value), limit 100": lambda i: Filter(tags={"t": [f"topic{i % 50}"]}, limit=100),
        "#p + kinds, limit 50": lambda i: Filter(
            kinds=[1], tags={"p": [pubkeys[i % len(pubkeys)]]}, limit=50
        ),
        "30618 by #d (repo lookup)": lambda i: Filter(
            kinds=[30618], tags={"d": [f"repo{i % 300}"]}
        ),
        "no constraint, limit 500": lambda i: Filter(limit=500),
    }
    rows = []
    for name, build in filters.items():
        rounds = 300
        returned = 0

        def run(rounds: int = rounds, build=build) -> None:  # bound now: rate() calls it at once
            nonlocal returned
            for i in range(rounds):
                returned += len(store.query([build(i)]))

        per_s, secs = rate(rounds, run)
        rows.append(
            (
                name,
                f"{per_s:,.0f}",
                f"{secs * 1000 / rounds:.2f}",
                f"{returned / rounds:.0f}",
                f"{returned / secs:,.0f}",
            )
        )
    table(
        "EventStore.query (each a single REQ filter; events parsed back into Event objects)",
        ("filter", "queries/s", "ms/query", "events/query", "events/s"),
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events to verify")
    parser.add_argument("--store-events", type=int, default=20000, help="regular events to store")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--database", help="postgresql:// URL of an empty database, or a SQLite path"
    )
    where.add_argument(
        "--throwaway-postgres",
        action="store_true",
        help="start a durable PostgreSQL server for the run (Debian's binaries)",
    )
    args = parser.parse_args()
    bench_verification(args.events)
    if args.throwaway_postgres:
        with PostgresServer(durable=True) as server:
            bench_store(args.store_events, server.dsn(server.create_database()))
    else:
        bench_store(args.store_events, args.database)


if __name__ == "__main__":
    main()
