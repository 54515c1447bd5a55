#!/usr/bin/env python3
"""S17.2, S17.3: what the relay's peer client costs to catch up with a peer, NIP-77 vs REQ.

    .venv/bin/python scripts/bench/peers.py [--events 10000] [--missing 10]

A peer (``tests/support/nip77_relay.py``: NIP-01 plus our NIP-77 responder, on a real websocket
on 127.0.0.1) holds one announcement and ``--events`` issues tagging it; this relay's side (the
real ``PeerNetwork`` over a SQLite store, the plain store write policy) already has all but
``--missing`` of them. It is started, and timed until the store holds every event. Twice: once
with the peer answering NEG-OPEN (NIP-77 reconciliation, then the missing ids by REQ), once with
the peer answering it like a relay without NIP-77 (the REQ/EOSE paging fallback).

Printed per mode: bytes the peer received and sent (UTF-8 of the text frames), ids asked for,
seconds to catch up; and the ratio REQ / NIP-77 (the baseline is the REQ run of the same
process). Bytes *to* the peer are dominated by our own filters when many thread roots are
hosted: stage 3 and the live subscription name every root by id (ngit-grasp's L3 does the
same), so at 10,000 issues they are about 2 MB per walk either way.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from grasp.admission.intake import StoreWritePolicy  # noqa: E402
from grasp.git.url_policy import FetchPolicy  # noqa: E402
from grasp.nostr.event import Event, generate_secret_key, sign_event  # noqa: E402
from grasp.relay.peers.network import PeerNetwork, PeerSettings  # noqa: E402
from grasp.relay.sync_sources.settings import SyncSourceSettings  # noqa: E402
from grasp.store.sqlite import SqliteEventStore  # noqa: E402
from tests.support.nip77_relay import MiniNip77Relay  # noqa: E402


def corpus(count: int) -> tuple[Event, list[Event]]:
    secret = generate_secret_key()
    tags = [["d", "bench"], ["clone", "https://git.example/bench.git"]]
    announcement = sign_event(secret, 30617, tags, "", 1_700_000_000)
    coordinate = f"30617:{announcement.pubkey}:bench"
    issues = [
        sign_event(
            secret,
            1621,
            [["a", coordinate], ["subject", f"issue {n}"]],
            "x" * 300,
            1_700_000_001 + n,
        )
        for n in range(count)
    ]
    return announcement, issues


def run(nip77: bool, announcement: Event, issues: list[Event], missing: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, SqliteEventStore(Path(tmp) / "e.sqlite3") as store:
        store.save(announcement)
        for event in issues[missing:]:
            store.save(event)
        with MiniNip77Relay([announcement, *issues], nip77=nip77) as peer:
            network = PeerNetwork(
                StoreWritePolicy(store, lambda event: None),
                store,
                PeerSettings(domains=("bench.invalid",), bootstrap=(peer.url,)),
                FetchPolicy(allow_private=True),
                SyncSourceSettings(),
            )
            network.load()
            started = time.perf_counter()
            network.start()
            try:
                deadline = started + 300
                while not all(store.contains(e.id) for e in issues[:missing]):
                    if time.perf_counter() > deadline:
                        raise SystemExit("the peer client did not catch up in 300 s")
                    time.sleep(0.01)  # poll interval of a deadline-bounded wait
                took = time.perf_counter() - started
            finally:
                network.stop()
            return {
                "in": peer.bytes_in,
                "out": peer.bytes_out,
                "ids": peer.requested_ids,
                "secs": took,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--missing", type=int, default=10)
    args = parser.parse_args()
    announcement, issues = corpus(args.events)
    req = run(False, announcement, issues, args.missing)
    neg = run(True, announcement, issues, args.missing)
    print(f"{args.events} events at the peer, {args.missing} missing here")
    print(f"{'':10} {'peer in B':>12} {'peer out B':>12} {'ids asked':>10} {'seconds':>8}")
    for name, row in (("REQ", req), ("NIP-77", neg)):
        print(f"{name:10} {row['in']:>12,} {row['out']:>12,} {row['ids']:>10} {row['secs']:>8.2f}")
    total = lambda r: r["in"] + r["out"]  # noqa: E731
    print(
        f"REQ / NIP-77: {req['out'] / neg['out']:.0f}x the bytes from the peer, "
        f"{total(req) / total(neg):.1f}x the bytes both ways, "
        f"{req['secs'] / neg['secs']:.1f}x the time"
    )
    print(
        "(bytes to the peer are mostly our filters: the live subscription and stage 3 name every"
        " hosted thread root by id, S17.2)"
    )


if __name__ == "__main__":
    main()
