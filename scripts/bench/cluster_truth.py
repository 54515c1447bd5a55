#!/usr/bin/env python3
"""What cluster mode costs on the paths of issue 17 part A (S19.2); prints two tables.

    .venv/bin/python scripts/bench/cluster_truth.py [--events N] [--held N]

1. **Fan-out latency.** Two relay processes started by the CLI on one durable throw-away
   PostgreSQL (tests/support/postgres.py) with the same ``--data-dir`` and ``--domain``; a live
   subscriber on each; ``--events`` issues published one after the other to node 1. The
   baseline is node 1's own subscriber (the local hub); the figure is node 2's (LISTEN/NOTIFY,
   then a read of the event). Latency: from just before the EVENT is sent to the frame read.
2. **Purgatory refresh.** One process, two purgatory caches on one database (two nodes): with
   ``--held`` held announcements, the cost of ``refresh()`` when nothing changed (one read of
   the version) against a full reload after another node changed one row, and a plain
   ``load()`` as the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from grasp.nostr.event import sign_event  # noqa: E402
from grasp.nostr.nip34 import Announcement  # noqa: E402
from grasp.purgatory import PurgatoryStore  # noqa: E402
from grasp.store import open_store  # noqa: E402
from tests.support.nip34 import Key  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.relay import RelayClient, RelayProcess, accepted_repository, issue  # noqa: E402

DOMAIN = "grasp.test"


def _watch(client: RelayClient, count: int, seen: dict[str, float]) -> None:
    while len(seen) < count:
        frame = client.recv()
        if frame[0] == "EVENT":
            seen[frame[2]["id"]] = time.perf_counter()


def _ms(values: list[float]) -> tuple[str, str, str]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"{statistics.median(ordered) * 1000:.1f}",
        f"{p95 * 1000:.1f}",
        f"{ordered[-1] * 1000:.1f}",
    )


def fanout(server: PostgresServer, count: int) -> None:
    url = server.dsn(server.create_database())
    args = ("--database", url, "--domain", DOMAIN, "--public-url-scheme", "http")
    args += ("--event-rate-limit", "0")  # one publisher sends them all
    with tempfile.TemporaryDirectory() as tmp:
        with RelayProcess(Path(tmp), *args) as one, RelayProcess(Path(tmp), *args) as two:
            key = Key()
            publisher = RelayClient(one.ws_url, 10)
            repo = accepted_repository(publisher, DOMAIN, key.secret, "bench")
            watchers, seen = [], [{}, {}]
            for node in (one, two):
                client = RelayClient(node.ws_url, 10)
                client.send("REQ", "live", {"kinds": [1621], "authors": [key.pubkey]})
                assert client.recv() == ["EOSE", "live"]
                watchers.append(client)
            threads = [
                threading.Thread(target=_watch, args=(w, count, s), daemon=True)
                for w, s in zip(watchers, seen, strict=True)
            ]
            for thread in threads:
                thread.start()
            sent: dict[str, float] = {}
            for _ in range(count):
                event = issue(repo, key.secret)
                sent[event.id] = time.perf_counter()
                ok = publisher.publish(event)
                assert ok[2] is True, ok
            for thread in threads:
                thread.join(30)
            local = [seen[0][i] - t for i, t in sent.items()]
            remote = [seen[1][i] - t for i, t in sent.items()]
            for client in (publisher, *watchers):
                client.close()
    print(f"\nfan-out latency, {count} events published to node 1 (ms)")
    print(f"{'subscriber':<28}{'p50':>8}{'p95':>8}{'max':>8}")
    for name, values in (("node 1 (local hub, base)", local), ("node 2 (LISTEN/NOTIFY)", remote)):
        p50, p95, top = _ms(values)
        print(f"{name:<28}{p50:>8}{p95:>8}{top:>8}")
    ratio = statistics.median(remote) / statistics.median(local)
    print(f"node 2 / node 1 p50: {ratio:.2f}x")


def refresh(server: PostgresServer, held: int, rounds: int = 20) -> None:
    url = server.dsn(server.create_database())
    one = PurgatoryStore(db=open_store(url, pool_size=2), shared=True)
    two = PurgatoryStore(db=open_store(url, pool_size=2), shared=True)
    secret = Key().secret
    for n in range(held):
        event = sign_event(secret, 30617, [["d", f"repo-{n}"]], "", created_at=1_700_000_000)
        one.add_announcement(Announcement.from_event(event))
    two.refresh()

    def timed(action) -> float:
        start = time.perf_counter()
        action()
        return time.perf_counter() - start

    unchanged = [timed(two.refresh) for _ in range(rounds)]
    reloads = []
    for n in range(rounds):
        extra = sign_event(secret, 30617, [["d", f"extra-{n}"]], "", created_at=1_700_000_000)
        one.add_announcement(Announcement.from_event(extra))
        reloads.append(timed(two.refresh))
    base = [timed(lambda: PurgatoryStore(db=two.db).load()) for _ in range(5)]
    print(f"\npurgatory refresh with {held} held announcements (ms)")
    print(f"{'operation':<36}{'p50':>8}")
    for name, values in (
        ("load() at start-up (base)", base),
        ("refresh(), nothing changed", unchanged),
        ("refresh() after another node wrote", reloads),
    ):
        print(f"{name:<36}{statistics.median(values) * 1000:>8.2f}")
    print(f"unchanged / load: {statistics.median(unchanged) / statistics.median(base):.3f}x")
    for store in (one, two):
        assert store.db is not None
        store.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--held", type=int, default=1000)
    args = parser.parse_args()
    with PostgresServer(durable=True) as server:
        fanout(server, args.events)
        refresh(server, args.held)


if __name__ == "__main__":
    main()
