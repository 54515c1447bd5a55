#!/usr/bin/env python3
"""P7: held-event intake against plain stored events, through the same websocket path.

    .venv/bin/python scripts/bench/intake.py [--events 2000] [--clients 4] [--rounds 2]
        [--source DIR]

``grasp-relay`` runs as its own process, started through its CLI (tests/support/relay.py),
data in a temporary directory, log level WARNING, ``--event-rate-limit 0``. ``--source DIR``
runs the relay of another checkout (``python -m grasp.relay.cli`` with ``PYTHONPATH=DIR``) with
this script's interpreter, so "before" and "after" a change run the same measurement.

Two kinds of load go through the same relay, the same clients and the same EVENT -> OK path,
alternated ``--rounds`` times (plain, held, plain, held, ...), fresh events every round:

* plain: NIP-34 issues (1621) of one served repository; each is stored at once (``OK true ""``).
* held: for each of ``--events / 2`` new identifiers, an announcement (30617) that lists the
  relay and its state (30618) naming a commit nobody has. Both are answered
  ``OK true "purgatory: ..."``; the announcement also creates the empty bare repository that
  GRASP-01 :34 wants to exist for it — the cost this benchmark exists to watch.

Figures: events/s of each (events over the wall time of the slowest client), relay CPU per
event (user + system from /proc, the figure other load moves least), EVENT -> OK median and
p95, and the disk used per empty repository (allocated blocks and apparent bytes). The goal
ratio is held events/s over plain events/s (P7 goal: >= 0.8).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _common import cpu_seconds, percentile, relay_process_of, scratch_dir  # noqa: E402
from _goal import goal_line  # noqa: E402

from grasp.nostr.event import Event, npub_encode  # noqa: E402
from tests.support.nip34 import Key  # noqa: E402
from tests.support.relay import RelayClient, RelayProcess, accepted_repository, issue  # noqa: E402

GOAL = 0.8
RELAY_ARGS = ("--log-level", "WARNING", "--event-rate-limit", "0")  # the bench publishes fast


class Load:
    """Signs the events of each round before its clock starts."""

    def __init__(self, relay: RelayProcess) -> None:
        self.domain = f"127.0.0.1:{relay.port}"
        self.owner = Key()
        client = RelayClient(relay.ws_url, timeout=30)
        try:
            self.repo = accepted_repository(client, self.domain, self.owner.secret, "intake")
        finally:
            client.close()
        self.round = 0

    def plain(self, n: int) -> list[list[Event]]:
        self.round += 1
        return [
            [issue(self.repo, self.owner.secret, f"issue {self.round}-{i} " + "x" * 200)]
            for i in range(n)
        ]

    def held(self, n: int) -> list[list[Event]]:
        """``n // 2`` announcement + state pairs (kept in order: the state needs its owner)."""
        self.round += 1
        own = f"ws://{self.domain}"
        pairs = []
        for i in range(n // 2):
            identifier = f"held-{self.round}-{i}"
            clone = f"http://{self.domain}/{npub_encode(self.owner.pubkey)}/{identifier}.git"
            missing = f"{self.round * 10**6 + i + 1:040x}"
            pairs.append(
                [
                    self.owner.announcement(identifier, clone=[clone], relays=[own]),
                    self.owner.state(identifier, {"refs/heads/main": missing}),
                ]
            )
        return pairs


def publish(
    relay: RelayProcess, units: list[list[Event]], n_clients: int, expect: str
) -> tuple[int, float, float, list[float]]:
    """Publish ``units`` over ``n_clients`` connections; (events, wall s, CPU s, latencies)."""
    latencies: list[float] = []
    clients = [RelayClient(relay.ws_url, timeout=60) for _ in range(n_clients)]

    def work(client: RelayClient, share: list[list[Event]]) -> None:
        for unit in share:
            for event in unit:
                began = time.perf_counter()
                ok = client.publish(event)
                latencies.append(time.perf_counter() - began)
                if ok[2] is not True or not str(ok[3]).startswith(expect):
                    raise RuntimeError(f"event {event.id} (kind {event.kind}) answered {ok}")

    try:
        cpu, began = cpu_seconds(relay.pid), time.perf_counter()
        jobs = [gevent.spawn(work, c, units[i::n_clients]) for i, c in enumerate(clients)]
        gevent.joinall(jobs, raise_error=True)
        wall = time.perf_counter() - began
        return len(latencies), wall, cpu_seconds(relay.pid) - cpu, latencies
    finally:
        for client in clients:
            client.close()


def repository_disk(repos: Path) -> tuple[int, float, float]:
    """(empty repositories, KiB allocated per repository, KiB apparent per repository); a
    file hard-linked from several repositories (a shared template) is counted once."""
    found = [p for p in repos.glob("*/held-*.git") if p.is_dir()]
    blocks = apparent = 0
    seen: set[tuple[int, int]] = set()
    for repo in found:
        for path in [repo, *repo.rglob("*")]:
            st = path.lstat()
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            blocks += st.st_blocks * 512
            apparent += st.st_size
    n = max(1, len(found))
    return len(found), blocks / 1024 / n, apparent / 1024 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per round and kind")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="alternations plain/held")
    parser.add_argument("--source", type=Path, help="run the relay of this checkout instead")
    args = parser.parse_args()
    totals = {k: {"n": 0, "wall": 0.0, "cpu": 0.0, "lat": []} for k in ("plain", "held")}
    with scratch_dir("intake-bench-") as tmp:  # rm -rf: rmtree runs out of descriptors
        data = tmp / "data"
        with relay_process_of(data, args.source, *RELAY_ARGS) as relay:
            load = Load(relay)
            for _ in range(args.rounds):
                for kind, units, expect in (
                    ("plain", load.plain(args.events), ""),
                    ("held", load.held(args.events), "purgatory:"),
                ):
                    n, wall, cpu, lat = publish(relay, units, args.clients, expect)
                    t = totals[kind]
                    t["n"], t["wall"], t["cpu"] = t["n"] + n, t["wall"] + wall, t["cpu"] + cpu
                    t["lat"] += lat  # type: ignore[operator]
        n_repos, kib_blocks, kib_apparent = repository_disk(data / "repos")
    rate = {k: t["n"] / t["wall"] for k, t in totals.items()}  # type: ignore[operator]
    which = str(args.source) if args.source else "this checkout"
    print(
        f"P7 intake bench ({which}): {args.rounds} rounds of {args.events} plain issues and "
        f"{args.events} held events (announcement + state pairs), {args.clients} clients"
    )
    print(f"{'':36} {'plain':>10} {'held':>10} {'held/plain':>11}")
    rows = [
        ("events/s", rate["plain"], rate["held"]),
        *[
            (name, fn(totals["plain"]), fn(totals["held"]))
            for name, fn in (
                ("relay CPU per event (ms)", lambda t: 1000 * t["cpu"] / t["n"]),
                ("EVENT->OK median (ms)", lambda t: 1000 * percentile(t["lat"], 50)),
                ("EVENT->OK p95 (ms)", lambda t: 1000 * percentile(t["lat"], 95)),
            )
        ],
    ]
    for name, plain, held in rows:
        print(f"{name:36} {plain:10.2f} {held:10.2f} {held / plain:11.2f}")
    print(
        f"empty repositories: {n_repos}, {kib_blocks:.1f} KiB allocated, "
        f"{kib_apparent:.1f} KiB apparent each"
    )
    ratio = rate["held"] / rate["plain"]
    status = "met" if ratio >= GOAL else "NOT MET"
    print(f"P7 held/plain intake: {ratio:.2f}x (goal >= {GOAL}x): {status}")
    goal_line(
        "P7",
        "held events/s / plain events/s",
        f"{ratio:.2f}x ({rate['held']:.0f} vs {rate['plain']:.0f}/s)",
        f">= {GOAL}x",
        ratio / GOAL,
        ratio >= GOAL,
    )


if __name__ == "__main__":
    main()
