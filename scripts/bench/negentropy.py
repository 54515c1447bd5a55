#!/usr/bin/env python3
"""What NIP-77 saves over a REQ history copy when two relays already share almost everything.

    .venv/bin/python scripts/bench/negentropy.py [--events 10000] [--missing 5] [--repeat 5]
        [--no-relay]

Two sides each hold ``--events`` signed NIP-34 events (issues, patches, comments, states; about
600 B of JSON each) and differ in ``2 × --missing``: ``--missing`` only on the client, as many
only on the relay. Everything runs in this process through the real modules
(``grasp.nostr.nip77`` initiator and responder, ``grasp.nostr.negentropy``); no network.

What each figure counts (bytes are UTF-8 bytes of compact JSON frames, as sent on a websocket):

* **NIP-77** — every frame of the reconciliation both ways (NEG-OPEN with its filter, each
  NEG-MSG, NEG-CLOSE), *plus* moving the differences: a REQ by ids, the relay's EVENT frames
  for the events the client lacked and EOSE; the client's EVENT frames for the events the relay
  lacked and the relay's OK for each.
* **REQ copy** — what a REQ/EOSE history copy transfers to learn the same thing: the REQ, one
  EVENT frame for *every* event the filter matches on the relay, and EOSE. (It still would not
  tell the client what the relay lacks.)
* **round trips** — reconciliation messages the client waits for (NEG-OPEN → first NEG-MSG is
  one), then one for the download and one for the upload.
* **CPU** — ``time.process_time`` of one whole reconciliation per side, building and sealing the
  item storage included, the store query excluded (the items are handed over as a list); the
  median of ``--repeat`` runs.

The last table measures the same against the **real relay** (a ``grasp-relay`` process over a
websocket, ``scripts/bench/negentropy_relay.py``): NIP-77 then REQ by ids and EVENT uploads,
against REQ paging by ``until`` through the relay's 500-event ``limit`` cap, in the same run.

Before it, a table shows the responder's cost at the relay's record cap (100,000 records): the
CPU a single NEG-OPEN costs the relay, which the lead wiring must keep off the gevent hub if it
is too long.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from grasp.nostr.event import Event, generate_secret_key, sign_event  # noqa: E402
from grasp.nostr.filters import Filter  # noqa: E402
from grasp.nostr.negentropy import Negentropy, NegentropyStorage  # noqa: E402
from grasp.nostr.nip77 import (  # noqa: E402
    DEFAULT_FRAME_SIZE_LIMIT,
    NegentropyInitiator,
    NegentropyResponder,
    ReconcileResult,
)

NIP34_KINDS = (1617, 1618, 1621, 1630, 1111, 30618)
FILTER = Filter(kinds={1617, 1618, 1621, 1630, 1111, 30618})


def wire(frame: list) -> int:
    return len(json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def nip34_events(count: int, seed: int) -> list[Event]:
    """Signed events shaped like a GRASP relay's traffic (~600 B of JSON each)."""
    rng = random.Random(seed)
    keys = [generate_secret_key() for _ in range(20)]
    owner = sign_event(keys[0], 30617, [["d", "x"]], "").pubkey
    events = []
    for n in range(count):
        kind = NIP34_KINDS[n % len(NIP34_KINDS)]
        repo = f"30617:{owner}:repo-{rng.randrange(40)}"
        tags = [
            ["a", repo],
            ["p", owner],
            ["subject", f"fix the {rng.choice(('parser', 'fetch', 'index'))} #{n}"],
        ]
        if kind == 30618:
            tags = [
                ["d", f"repo-{n}"],
                ["refs/heads/main", rng.randbytes(20).hex()],
                ["HEAD", "ref: refs/heads/main"],
            ] + tags[:2]
        content = " ".join(
            rng.choice(("the", "relay", "fetch", "commit", "ref", "event"))
            for _ in range(rng.randrange(8, 24))
        )
        events.append(
            sign_event(
                rng.choice(keys), kind, tags, content, 1_750_000_000 + n * 37 + rng.randrange(30)
            )
        )
    return events


def reconcile_once(
    client_items, relay_items, limit: int
) -> tuple[ReconcileResult, int, int, float, float]:
    """One reconciliation; returns (result, bytes both ways, round trips, CPU client, relay)."""
    cpu = {"client": 0.0, "relay": 0.0}

    def timed(side: str, func: Callable):
        start = time.process_time()
        value = func()
        cpu[side] += time.process_time() - start
        return value

    init = timed(
        "client", lambda: NegentropyInitiator(client_items, "sync", FILTER, frame_size_limit=limit)
    )
    responder = NegentropyResponder(lambda _f: relay_items, frame_size_limit=limit)
    frame = timed("client", init.open_frame)
    sent = 0
    for _ in range(10_000):
        sent += wire(frame)
        reply = timed("relay", lambda frame=frame: responder.handle(frame))
        sent += wire(reply)
        outcome = timed("client", lambda reply=reply: init.on_frame(reply))
        if isinstance(outcome, ReconcileResult):
            sent += wire(init.close_frame())
            return outcome, sent, init.rounds, cpu["client"], cpu["relay"]
        frame = outcome
    raise RuntimeError("reconciliation did not end")


def transfer_bytes(result: ReconcileResult, by_id: dict[str, Event]) -> int:
    """Download what the client lacks (REQ by ids, EVENT…, EOSE); upload what the relay lacks."""
    total = wire(["REQ", "fetch", {"ids": sorted(result.need_ids)}]) + wire(["EOSE", "fetch"])
    total += sum(wire(["EVENT", "fetch", by_id[i].to_json()]) for i in result.need_ids)
    total += sum(
        wire(["EVENT", by_id[i].to_json()]) + wire(["OK", i, True, ""]) for i in result.have_ids
    )
    return total


def table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    cells = [header] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print(
            "  ".join(
                [row[0].ljust(widths[0])]
                + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=False)]
            )
        )
        if n == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--missing", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--no-relay", action="store_true", help="skip the table against the real relay"
    )
    args = parser.parse_args()

    started = time.perf_counter()
    events = nip34_events(args.events + args.missing, seed=1)
    print(
        f"signed {len(events)} events in {time.perf_counter() - started:.1f} s; mean JSON "
        f"{statistics.mean(len(e.to_json_text().encode()) for e in events):.0f} B"
    )
    rng = random.Random(2)
    rng.shuffle(shuffled := list(events))
    only_client = shuffled[: args.missing]
    only_relay = shuffled[args.missing : 2 * args.missing]
    shared = shuffled[2 * args.missing :]
    client_items = [(e.created_at, e.id) for e in shared + only_client]
    relay_items = [(e.created_at, e.id) for e in shared + only_relay]
    by_id = {e.id: e for e in events}
    req_copy = (
        wire(["REQ", "history", FILTER.to_json()])
        + wire(["EOSE", "history"])
        + sum(wire(["EVENT", "history", by_id[i].to_json()]) for _, i in relay_items)
    )

    rows, cpu_rows = [], []
    for label, limit in (
        ("no frame limit", 0),
        (f"frame limit {DEFAULT_FRAME_SIZE_LIMIT}", DEFAULT_FRAME_SIZE_LIMIT),
        ("frame limit 4096", 4096),
    ):
        runs = [reconcile_once(client_items, relay_items, limit) for _ in range(args.repeat)]
        result, sent, rounds, _, _ = runs[0]
        assert result.need_ids == {e.id for e in only_relay}, "wrong need set"
        assert result.have_ids == {e.id for e in only_client}, "wrong have set"
        total = sent + transfer_bytes(result, by_id)
        rows.append(
            (f"NIP-77, {label}", f"{sent:,}", f"{total:,}", rounds + 2, f"{req_copy / total:.1f}x")
        )
        cpu_rows.append(
            (
                label,
                f"{statistics.median(r[3] for r in runs) * 1000:.1f}",
                f"{statistics.median(r[4] for r in runs) * 1000:.1f}",
            )
        )
    rows.append((f"REQ copy of {len(relay_items):,} events", "-", f"{req_copy:,}", 1, "1.0x"))
    table(
        f"Bytes to reconcile {args.events:,} events differing in {2 * args.missing} "
        f"({args.missing} missing on each side)",
        ("method", "reconcile B", "total B", "round trips", "REQ/this"),
        rows,
    )
    table(
        f"CPU per reconciliation (median of {args.repeat})", ("", "client ms", "relay ms"), cpu_rows
    )
    responder_at_cap()
    if not args.no_relay:
        against_the_relay(args.events, args.missing)
    return 0


def against_the_relay(events: int, missing: int) -> None:
    """S17.3 on the wire: the real relay process, NIP-77 against REQ paging, in this run."""
    from scripts.bench.negentropy_relay import measure

    table(
        f"Real relay: bytes to reconcile {events:,} events differing in {2 * missing} "
        f"({missing} missing on each side)",
        ("method", "bytes", "messages waited for", "seconds", "REQ/this"),
        measure(events, missing),
    )


def responder_at_cap(records: int = 100_000) -> None:
    """What one NEG-OPEN costs the relay at the record cap (synthetic ids, no signing)."""
    rng = random.Random(3)
    items = [(1_750_000_000 + n // 2, rng.randbytes(32)) for n in range(records)]
    start = time.process_time()
    relay = NegentropyStorage.from_items(items)
    sealed = time.process_time() - start
    client = Negentropy(NegentropyStorage.from_items(items[5:]))
    opening = client.initiate()
    start = time.process_time()
    Negentropy(relay, DEFAULT_FRAME_SIZE_LIMIT).reconcile(opening)
    first = time.process_time() - start
    table(
        f"Responder cost at {records:,} records",
        ("step", "CPU ms"),
        [
            ("build + seal storage", f"{sealed * 1000:.0f}"),
            ("answer the NEG-OPEN", f"{first * 1000:.1f}"),
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
