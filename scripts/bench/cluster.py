#!/usr/bin/env python3
"""1 node vs 3 nodes of a cluster on one PostgreSQL (issue 17, S19.2, docs/scaling.rst).

    .venv/bin/python scripts/bench/cluster.py [--identifiers 300] [--servers 10]
        [--window 2] [--nodes 1,3]

Same run, same machine, for each node count: a fresh database on one throw-away durable
PostgreSQL (tests/support/postgres.py), a fresh shared ``--data-dir``, ``N`` relay processes
started by the CLI with the same ``--database``, ``--data-dir`` and ``--domain``, each on its
own port, and the same ``--servers`` real ``git http-backend`` servers on 127.0.0.2 and up
(distinct domains, S3.3), every request recorded with its start and end.

Work: ``--identifiers`` repositories round-robin over the servers; per identifier an
announcement and a state whose commit only its server has are published to node ``i % N``
(``--sync-default-delay-secs 0``: synced at once). Limits are the defaults (5 in flight, 30
per window, S6.1) are lowered (``--concurrent 2``, ``--rate-limit 4`` per ``--window 2``
seconds: 2 fetches/s per domain, 20/s over 10 servers) so that the limits bind and the ledger
is exercised: every node alone would be allowed the whole limit.

A last run repeats the largest node count and SIGKILLs node 0 right after the publishing
(its share of the syncs under way): the survivors adopt its held events once its heartbeat
stopped (S19.2); throughput then includes that failover.

Figures per node count:

* throughput: identifiers released per second, from the first publish to the last release;
* politeness violations summed over nodes, as the servers saw them (fetch sessions of
  ``politeness.py``): window slots with more than the limit plus any in-flight excess; must be 0;
* p50 / p95 release latency: state ``OK`` to the first live ``EVENT`` of it on any node;
* fetches per identifier (1.00 = each identifier fetched once across the cluster);
* CPU seconds of the relays and of every PostgreSQL process, and the database's share;
* lost: states published and never served by the cluster (must be 0);
* commits per identifier (``pg_stat_database.xact_commit``, every node and the stats
  queries): what the model of docs/scaling.rst divides PostgreSQL's commit rate by.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from _common import (  # noqa: E402
    BenchError,
    Key,
    RelayClient,
    Span,
    cpu_seconds,
    percentile,
    print_table,
    publish,
    scratch_dir,
    span_recorder,
)
from politeness import fetch_sessions, max_in_flight, window_slacks  # noqa: E402

from actors.fakes import max_in_window  # noqa: E402
from grasp.nostr.bech32 import npub_encode  # noqa: E402
from tests.support.gitrepo import RepoBuilder  # noqa: E402
from tests.support.gitserver import GitServer  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.relay import RelayProcess  # noqa: E402
from tests.support.wait import wait_for  # noqa: E402

DOMAIN = "grasp.bench"


def postgres_pids(postmaster: int) -> list[int]:
    """The postmaster and its children (backends, writers, checkpointer ...)."""
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == postmaster:
                pids.append(int(entry.name))
    return pids


def postgres_cpu(postmaster: int) -> float:
    return sum(cpu_seconds(pid) for pid in postgres_pids(postmaster))


def commits(database: str) -> int:
    """Transactions committed in the database so far (pg_stat_database, all nodes)."""
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


@dataclass
class Result:
    nodes: int
    identifiers: int
    seconds: float
    violations: int
    max_flight: int
    max_window: int
    fetches: int
    latencies: list[float]
    relay_cpu: float
    db_cpu: float
    limits: tuple[int, int]
    commits: int
    lost: int
    killed: bool

    @property
    def label(self) -> str:
        return f"{self.nodes}, 1 killed" if self.killed else str(self.nodes)

    def row(self) -> list[str]:
        share = self.db_cpu / (self.db_cpu + self.relay_cpu) if self.relay_cpu else float("nan")
        return [
            self.label,
            f"{self.identifiers / self.seconds:.1f}",
            str(self.violations),
            f"{self.max_flight}/{self.limits[0]}",
            f"{self.max_window}/{self.limits[1]}",
            f"{self.fetches / self.identifiers:.2f}",
            f"{percentile(self.latencies, 50) * 1e3:.0f}",
            f"{percentile(self.latencies, 95) * 1e3:.0f}",
            f"{self.relay_cpu:.1f}",
            f"{self.db_cpu:.1f}",
            f"{share:.0%}",
            f"{self.commits / self.identifiers:.0f}",
            str(self.lost),
        ]


def make_repositories(servers: list[GitServer], identifiers: list[str], work: Path) -> str:
    template = work / "template.git"
    tip = RepoBuilder.create(template).commit(branch="main")
    shutil.rmtree(template / "hooks")
    for i, identifier in enumerate(identifiers):
        target = servers[i % len(servers)].root / f"{identifier}.git"
        if not target.exists():
            shutil.copytree(template, target)
    return tip


def start_nodes(
    count: int, database: str, data_dir: Path, args: argparse.Namespace
) -> list[RelayProcess]:
    nodes = []
    for _ in range(count):
        node = RelayProcess(
            data_dir,
            "--database", database,
            "--domain", DOMAIN,
            "--public-url-scheme", "http",
            "--allow-private-fetch",
            "--log-level", "WARNING",
            "--event-rate-limit", "0",
            "--sync-default-delay-secs", "0",
            "--sync-rate-window-secs", str(args.window),
            "--sync-domain-concurrent", str(args.concurrent),
            "--sync-domain-rate-limit", str(args.rate_limit),
            start_timeout=60,
        )  # fmt: skip
        nodes.append(node.start())
    return nodes


def stored_states(client: RelayClient, ids: list[str]) -> int:
    """How many of ``ids`` the cluster serves (REQ by id, in chunks)."""
    found = 0
    for start in range(0, len(ids), 100):
        found += len(client.req("ids", {"ids": ids[start : start + 100]}))
    return found


class Watcher:
    """A live subscription to released states on one node; first arrival per id wins."""

    def __init__(self, node: RelayProcess, author: str, seen: dict[str, float]) -> None:
        self.client = RelayClient(node.ws_url, timeout=3600)
        self.client.send("REQ", "live", {"kinds": [30618], "authors": [author], "limit": 0})
        self.seen = seen
        self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            try:
                frame = self.client.recv()
            except Exception:  # its node was killed: the others' watchers see the rest
                return
            if frame[0] == "EVENT":
                self.seen.setdefault(frame[2]["id"], time.monotonic())

    def close(self) -> None:
        self.greenlet.kill(block=False)
        self.client.close()


def run_once(
    count: int,
    args: argparse.Namespace,
    pg: PostgresServer,
    servers,
    logs,
    tip,
    work: Path,
    kill: bool = False,
) -> Result:
    identifiers = [f"cl-{i:04d}" for i in range(args.identifiers)]
    for log in logs.values():
        log.clear()
    database = pg.dsn(pg.create_database())
    key = Key()
    npub = npub_encode(key.pubkey)
    seen: dict[str, float] = {}
    oks: dict[str, float] = {}
    postmaster = pg._process.pid if pg._process else 0
    with ExitStack() as stack:
        nodes = start_nodes(count, database, work / f"data-{count}", args)
        for node in nodes:
            stack.callback(node.stop)
        watchers = [Watcher(node, key.pubkey, seen) for node in nodes]
        for watcher in watchers:
            stack.callback(watcher.close)
        clients = [RelayClient(node.ws_url, timeout=60) for node in nodes]
        for client in clients:
            stack.callback(client.close)
        db_before, commits_before = postgres_cpu(postmaster), commits(database)
        began = time.monotonic()

        def feed(n: int) -> None:
            client = clients[n]
            for i in range(n, len(identifiers), count):
                identifier = identifiers[i]
                server = servers[i % len(servers)]
                own = f"http://{DOMAIN}/{npub}/{identifier}.git"
                clone = [own, server.url(f"{identifier}.git")]
                publish(
                    client, key.announcement(identifier, clone=clone, relays=[f"ws://{DOMAIN}"])
                )
                state = key.state(identifier, {"refs/heads/main": tip})
                publish(client, state, "purgatory:")
                oks[state.id] = time.monotonic()

        gevent.joinall([gevent.spawn(feed, n) for n in range(count)], raise_error=True)
        killed_cpu = 0.0
        if kill:  # node 0 dies with its share of the work under way (S19.2 failover)
            killed_cpu = cpu_seconds(nodes[0].pid)
            nodes[0].send_signal(signal.SIGKILL)
            nodes[0].wait(10)
            nodes = nodes[1:]
        wait_for(
            lambda: len(seen) >= len(oks),
            timeout=args.timeout,
            interval=0.2,
            message=lambda: f"{len(oks)} states released (seen {len(seen)})",
        )
        seconds = max(seen.values()) - began
        relay_cpu = killed_cpu + sum(cpu_seconds(n.pid) for n in nodes)
        db_cpu = postgres_cpu(postmaster) - db_before
        committed = commits(database) - commits_before
        stored = stored_states(clients[-1], list(oks))
    violations = flight = in_window = fetches = 0
    for log in logs.values():
        sessions = fetch_sessions(log)
        fetches += len(sessions)
        starts = [f.start for f in sessions]
        slacks = window_slacks(starts, args.window, args.rate_limit)
        domain_flight = max_in_flight(sessions)
        violations += sum(1 for s in slacks if s < 0) + max(0, domain_flight - args.concurrent)
        flight = max(flight, domain_flight)
        in_window = max(in_window, max_in_window(starts, args.window))
    latencies = [seen[i] - t for i, t in oks.items() if i in seen]
    return Result(
        count,
        args.identifiers,
        seconds,
        violations,
        flight,
        in_window,
        fetches,
        latencies,
        relay_cpu,
        db_cpu,
        (args.concurrent, args.rate_limit),
        committed,
        len(oks) - stored,
        kill,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identifiers", type=int, default=300)
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--window", type=float, default=2.0, help="--sync-rate-window-secs")
    parser.add_argument("--nodes", default="1,3", help="node counts to compare, in order")
    parser.add_argument("--concurrent", type=int, default=2, help="--sync-domain-concurrent")
    parser.add_argument("--rate-limit", type=int, default=4, help="--sync-domain-rate-limit")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--no-kill", dest="kill", action="store_false", help="skip the run with a node killed"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.nodes.split(",")]
    hosts = [f"127.0.0.{2 + i}" for i in range(args.servers)]
    logs: dict[str, list[Span]] = {host: [] for host in hosts}
    results = []
    with scratch_dir("bench-cluster-") as work, ExitStack() as stack:
        pg = stack.enter_context(PostgresServer(durable=True))
        servers = []
        for host in hosts:
            (work / host).mkdir()
            servers.append(
                stack.enter_context(
                    GitServer(work / host, host=host, wrap=span_recorder(logs[host]))
                )
            )
        tip = make_repositories(servers, [f"cl-{i:04d}" for i in range(args.identifiers)], work)
        for count in counts:
            results.append(run_once(count, args, pg, servers, logs, tip, work))
        if args.kill and max(counts) > 1:
            results.append(run_once(max(counts), args, pg, servers, logs, tip, work, kill=True))
    print_table(
        f"Cluster: {args.identifiers} identifiers over {args.servers} loopback git servers, "
        f"limits {args.concurrent} in flight and {args.rate_limit} per {args.window:g} s window "
        "per domain, summed over nodes (S6.1, S19.2); PostgreSQL durable, same machine",
        [
            "nodes",
            "identifiers/s",
            "violations",
            "max in flight",
            "max in window",
            "fetches/id",
            "p50 ms",
            "p95 ms",
            "relay CPU s",
            "PG CPU s",
            "PG share",
            "commits/id",
            "lost",
        ],
        [r.row() for r in results],
        notes=[f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"],
    )
    if any(r.violations or r.lost for r in results):
        raise BenchError("politeness violated or events lost (see the table)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
