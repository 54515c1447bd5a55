#!/usr/bin/env python3
"""Which PostgreSQL driver keeps a gevent hub responsive: psycopg 3 or pg8000 (S19.1).

    .venv/bin/python scripts/bench/pgdriver.py [--database URL] [--rows N] [--fast]

pg8000 is not a dependency of the relay; install it into .venv to compare it.

The relay runs every greenlet on one hub, so a driver that waits for the server inside C code
(or that spends long stretches parsing in Python) stalls every websocket of the process. For
each driver this prints, from 1 and from 20 concurrent greenlets (one connection each):

- single-row INSERTs in autocommit (one commit each) per second;
- indexed SELECTs (about 10 rows each) per second;
- the hub's worst stall while they run: a ticker greenlet sleeps 1 ms in a loop and records
  the largest gap beyond its 1 ms;
- overlap: 20 greenlets each run ``SELECT pg_sleep(0.05)``; wall time near 0.05 s means they
  really ran at once, near 1 s means the driver serialised them.

``psycopg (wait_c)`` is psycopg with its C wait function forced, which is what it uses when it
does not detect gevent's patching: it shows what the detection is worth.

Without ``--database`` a throw-away server is started (tests/support/postgres.py), durable
(fsync on) unless ``--fast``. Every loop is bounded by the row and query counts.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import unquote, urlsplit  # noqa: E402

import gevent  # noqa: E402
import psycopg  # noqa: E402
import psycopg.waiting  # noqa: E402

try:  # only this comparison needs it: .venv/bin/pip install pg8000
    import pg8000.dbapi
except ImportError:
    pg8000 = None

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.postgres import PostgresServer  # noqa: E402

GREENLETS = (1, 20)
SLEEP_SECS = 0.05


class Driver:
    """One way of connecting: ``connect()`` gives a DB-API connection in autocommit mode."""

    name = ""
    placeholder = "%s"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def connect(self):  # noqa: ANN201 - a DB-API connection of the driver's own type
        raise NotImplementedError

    @contextmanager
    def active(self) -> Iterator[None]:
        yield


class Psycopg(Driver):
    name = "psycopg 3 (gevent-aware wait)"

    def connect(self):  # noqa: ANN201
        return psycopg.connect(self.dsn, autocommit=True)


class PsycopgWaitC(Psycopg):
    name = "psycopg 3 (wait_c forced)"

    @contextmanager
    def active(self) -> Iterator[None]:
        saved = psycopg.waiting.wait
        psycopg.waiting.wait = psycopg.waiting.wait_c
        try:
            yield
        finally:
            psycopg.waiting.wait = saved


class Pg8000(Driver):
    name = "pg8000 (pure Python)"

    def connect(self):  # noqa: ANN201
        url = urlsplit(self.dsn)
        conn = pg8000.dbapi.connect(
            user=unquote(url.username or ""),
            password=unquote(url.password or ""),
            host=url.hostname,
            port=url.port or 5432,
            database=url.path.lstrip("/"),
        )
        conn.autocommit = True
        return conn


class Ticker:
    """A greenlet sleeping 1 ms in a loop; ``worst`` is its largest extra wait, in seconds."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._running = True
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        last = time.perf_counter()
        while self._running:
            gevent.sleep(0.001)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - 0.001)
            last = now

    def stop(self) -> float:
        self._running = False
        self._greenlet.join(timeout=5)
        return self.worst


@dataclass
class Figure:
    per_s: float
    stall_ms: float


def run_concurrently(driver: Driver, greenlets: int, work: Callable[[object, int], int]) -> Figure:
    """``work(cursor, worker)`` in ``greenlets`` greenlets at once; ops/s and the worst stall."""
    conns = [driver.connect() for _ in range(greenlets)]
    try:
        ticker = Ticker()
        start = time.perf_counter()
        jobs = [gevent.spawn(work, conn.cursor(), i) for i, conn in enumerate(conns)]
        gevent.joinall(jobs, timeout=600, raise_error=True)
        elapsed = time.perf_counter() - start
        stall = ticker.stop()
        return Figure(sum(job.value for job in jobs) / elapsed, stall * 1000)
    finally:
        for conn in conns:
            conn.close()


def prepare(driver: Driver, rows: int) -> None:
    conn = driver.connect()
    try:
        cur = conn.cursor()
        cur.execute("DROP TABLE IF EXISTS bench")
        cur.execute("CREATE TABLE bench (id bigserial PRIMARY KEY, k integer NOT NULL, v text)")
        cur.execute("CREATE INDEX bench_k ON bench (k)")
        cur.execute(
            "INSERT INTO bench (k, v) SELECT mod(g, %s), repeat('x', 200) "
            "FROM generate_series(1, %s) g",
            (rows // 10, rows),
        )
        cur.execute("ANALYZE bench")
    finally:
        conn.close()


def bench_driver(driver: Driver, rows: int, inserts: int, queries: int) -> dict[str, object]:
    prepare(driver, rows)
    keys = rows // 10
    result: dict[str, object] = {}
    with driver.active():
        for n in GREENLETS:

            def insert(cur, worker: int, count: int = inserts // n) -> int:
                for i in range(count):
                    cur.execute("INSERT INTO bench (k, v) VALUES (%s, %s)", (i % keys, "y" * 200))
                return count

            def select(cur, worker: int, count: int = queries // n) -> int:
                for i in range(count):
                    key = (worker * 7919 + i) % keys
                    cur.execute("SELECT id, k, v FROM bench WHERE k = %s", (key,))
                    cur.fetchall()
                return count

            result[f"insert x{n}"] = run_concurrently(driver, n, insert)
            result[f"select x{n}"] = run_concurrently(driver, n, select)
        result["overlap"] = overlap(driver)
    return result


def overlap(driver: Driver, greenlets: int = 20) -> float:
    """Wall seconds for ``greenlets`` concurrent ``pg_sleep(SLEEP_SECS)``."""
    conns = [driver.connect() for _ in range(greenlets)]
    try:
        start = time.perf_counter()
        jobs = [gevent.spawn(c.cursor().execute, f"SELECT pg_sleep({SLEEP_SECS})") for c in conns]
        gevent.joinall(jobs, timeout=120, raise_error=True)
        return time.perf_counter() - start
    finally:
        for conn in conns:
            conn.close()


def print_table(results: dict[str, dict[str, object]], rows: int) -> None:
    header = ["driver"]
    for n in GREENLETS:
        header += [f"insert/s x{n}", "stall ms", f"select/s x{n}", "stall ms"]
    header.append("20 x pg_sleep(0.05) s")
    lines = [header]
    for name, figures in results.items():
        line = [name]
        for n in GREENLETS:
            for op in ("insert", "select"):
                fig = figures[f"{op} x{n}"]
                assert isinstance(fig, Figure)
                line += [f"{fig.per_s:,.0f}", f"{fig.stall_ms:.1f}"]
        line.append(f"{figures['overlap']:.3f}")
        lines.append(line)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    print(f"\nPostgreSQL drivers under gevent ({rows:,} rows, one connection per greenlet)")
    for i, row in enumerate(lines):
        cells = (
            c.ljust(w) if j == 0 else c.rjust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=False))
        )
        print("  ".join(cells))
        if i == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database",
        help="postgresql:// URL of a database to use (its table 'bench' is dropped and re-created)",
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the queried table")
    parser.add_argument("--inserts", type=int, default=4000, help="INSERTs per run")
    parser.add_argument("--queries", type=int, default=8000, help="SELECTs per run")
    parser.add_argument("--fast", action="store_true", help="throw-away server without fsync")
    args = parser.parse_args()
    server = None
    dsn = args.database
    if dsn is None:
        server = PostgresServer(durable=not args.fast).start()
        dsn = server.dsn("postgres")
    try:
        results = {}
        drivers = [Psycopg, PsycopgWaitC] + ([Pg8000] if pg8000 else [])
        if pg8000 is None:
            print(
                "pg8000 not installed (.venv/bin/pip install pg8000): not compared", file=sys.stderr
            )
        for cls in drivers:
            driver = cls(dsn)
            results[driver.name] = bench_driver(driver, args.rows, args.inserts, args.queries)
            print(f"{driver.name}: done", file=sys.stderr)
        print(
            f"psycopg {psycopg.__version__} (libpq {psycopg.pq.version()}, "
            f"{psycopg.pq.__impl__}, wait={psycopg.waiting.wait.__name__}); "
            f"pg8000 {pg8000.__version__ if pg8000 else '-'}; "
            f"fsync {'off' if args.fast else 'on'}"
        )
        print_table(results, args.rows)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
