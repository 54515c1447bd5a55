#!/usr/bin/env python3
"""Held-event intake and restart time of the relay process (issue 12, docs/durability.rst).

    .venv/bin/python scripts/bench/durability.py [--held 10000] [--identifiers 100]
        [--clients 4] [--source DIR] [--stop term|kill]

``grasp-relay`` runs as its own process, started through its CLI (tests/support/relay.py),
data in a temporary directory, log level WARNING. ``--source DIR`` runs the relay of another
checkout of this project (``python -m grasp.relay.cli`` with ``PYTHONPATH=DIR``) with this
script's interpreter, so the same measurement runs on the code before and after a change.

What is counted:

* setup (untimed): ``--identifiers`` repositories, each an announcement that lists the relay
  and an empty state that promotes it (the relay then serves it); then ``--held`` events are
  signed: three quarters repository states (30618) by the owner naming a commit nobody has, one
  quarter pull requests (1618) naming such a commit, spread evenly over the identifiers. Every
  one of them is answered ``OK true "purgatory: ..."``: a held event.
* intake: ``--clients`` websocket connections publish their share one EVENT at a time, each
  waiting for its OK; events/s = held events / wall time of the slowest connection, the
  EVENT->OK latency median and p95, and the relay process's CPU time (user + system, from
  /proc) per held event — the figure that other load on the machine moves least.
* restart: the relay is stopped (``--stop term``: SIGTERM, a graceful stop; ``kill``: SIGKILL)
  and started again on the same data directory. Two times from ``Popen``: the first NIP-11
  answer (the relay serves; it restores purgatory before it listens) and the first
  ``/status.json`` whose purgatory counts add up to every held event again.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _common import cpu_seconds, percentile, relay_process_of  # noqa: E402

from grasp.nostr.event import Event  # noqa: E402
from tests.support.nip34 import Key  # noqa: E402
from tests.support.relay import RelayClient, RelayProcess, accepted_repository  # noqa: E402

RELAY_ARGS = ("--log-level", "WARNING", "--event-rate-limit", "0")  # the bench publishes fast
HELD_KINDS = ("30617", "30618", "1618", "1619", "placeholder")


def held_events(relay: RelayProcess, n_held: int, n_identifiers: int) -> list[Event]:
    """Serve ``n_identifiers`` repositories (untimed) and sign ``n_held`` events to hold."""
    owner, contributor = Key(), Key()
    domain = f"127.0.0.1:{relay.port}"
    client = RelayClient(relay.ws_url, timeout=30)
    try:
        identifiers = [f"bench-{n}" for n in range(n_identifiers)]
        for identifier in identifiers:
            accepted_repository(client, domain, owner.secret, identifier)
    finally:
        client.close()
    events = []
    for n in range(n_held):
        identifier = identifiers[n % n_identifiers]
        missing = f"{n + 1:040x}"
        if n % 4 == 3:
            events.append(contributor.pr(owner.pubkey, identifier, missing, created_at=10**9 + n))
        else:
            refs = {"refs/heads/main": missing}
            events.append(owner.state(identifier, refs, created_at=10**9 + n))
    return events


def publish(relay: RelayProcess, events: list[Event], n_clients: int) -> tuple[float, float, list]:
    """Publish ``events`` over ``n_clients`` connections; (wall s, relay CPU s, latencies)."""
    latencies: list[float] = []
    clients = [RelayClient(relay.ws_url, timeout=60) for _ in range(n_clients)]

    def work(client: RelayClient, batch: list[Event]) -> None:
        for event in batch:
            began = time.perf_counter()
            ok = client.publish(event)
            latencies.append(time.perf_counter() - began)
            if ok[2] is not True or not ok[3].startswith("purgatory:"):
                raise RuntimeError(f"event {event.id} was not held: {ok}")

    try:
        cpu, began = cpu_seconds(relay.pid), time.perf_counter()
        jobs = [
            gevent.spawn(work, client, events[i::n_clients]) for i, client in enumerate(clients)
        ]
        gevent.joinall(jobs, raise_error=True)
        wall = time.perf_counter() - began
        return wall, cpu_seconds(relay.pid) - cpu, latencies
    finally:
        for client in clients:
            client.close()


def held_count(http_url: str) -> int:
    with urllib.request.urlopen(f"{http_url}/status.json", timeout=30) as response:
        counts = json.loads(response.read())["purgatory"]["counts"]
    return sum(counts.get(kind, 0) for kind in HELD_KINDS if kind != "30617")


def restart(relay: RelayProcess, how: str, expected: int, source: Path | None) -> dict:
    if how == "kill":
        relay.send_signal(signal.SIGKILL)
        relay.wait(30)
    relay.stop(timeout=120)
    again = relay_process_of(relay.data_dir, source, *RELAY_ARGS)
    began = time.perf_counter()
    again.start()  # returns once the ready line was printed and NIP-11 answered
    nip11 = time.perf_counter() - began
    while held_count(again.http_url) < expected:
        if time.perf_counter() - began > 600:
            raise RuntimeError(f"only {held_count(again.http_url)} of {expected} held again")
        gevent.sleep(0.05)
    held = time.perf_counter() - began
    again.stop(timeout=120)
    return {"nip11": nip11, "held": held, "log": again.log}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held", type=int, default=10_000, help="held events to publish")
    parser.add_argument("--identifiers", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--source", type=Path, help="run the relay of this checkout instead")
    parser.add_argument("--stop", choices=("term", "kill"), default="term")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="durability-bench-") as tmp:
        relay = relay_process_of(Path(tmp) / "data", args.source, *RELAY_ARGS).start()
        try:
            events = held_events(relay, args.held, args.identifiers)
            wall, cpu, latencies = publish(relay, events, args.clients)
            if held_count(relay.http_url) != len(events):
                raise RuntimeError(f"{held_count(relay.http_url)} held, not {len(events)}")
            times = restart(relay, args.stop, len(events), args.source)
        finally:
            relay.stop(timeout=120)
        size = sum(f.stat().st_size for f in (Path(tmp) / "data").glob("events.sqlite3*"))
    which = str(args.source) if args.source else "this checkout"
    print(
        f"durability bench ({which}): {len(events)} held events over {args.identifiers} "
        f"identifiers, {args.clients} clients, restart by SIG{args.stop.upper()}"
    )
    rows = [
        ("held-event intake (events/s)", len(events) / wall),
        ("relay CPU per held event (ms)", 1000 * cpu / len(events)),
        ("EVENT->OK latency median (ms)", 1000 * percentile(latencies, 50)),
        ("EVENT->OK latency p95 (ms)", 1000 * percentile(latencies, 95)),
        ("restart: NIP-11 answered (s)", times["nip11"]),
        ("restart: every event held again (s)", times["held"]),
        ("events.sqlite3* after the run (MiB)", size / 2**20),
    ]
    for name, value in rows:
        print(f"{name:40} {value:10.2f}")
    if os.environ.get("BENCH_SHOW_LOG"):
        print(times["log"])


if __name__ == "__main__":
    main()
