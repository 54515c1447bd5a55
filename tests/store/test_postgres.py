"""The PostgreSQL engine (S19.1): the store contract run on a real server, then what only
PostgreSQL has — numbered migrations under an advisory lock, the connection pool, clear errors
for unreachable or wrong databases, and greenlets that wait for the server cooperatively.

The server is tests/support/postgres.py's throw-away one; each store gets a fresh database
copied from a template that already carries the schema.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import gevent
import psycopg
import pytest

from grasp.nostr.filters import Filter
from grasp.store.base import SaveOutcome, StoreError
from grasp.store.pg_schema import MIGRATIONS, SCHEMA_VERSION
from grasp.store.postgres import PostgresEventStore
from tests.store.contract import EventStoreContract
from tests.store.corpus import fake_event
from tests.store.peers_contract import PeerStoreContract
from tests.support.postgres import PostgresServer, free_port
from tests.support.wait import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def schema_template(postgres_server: PostgresServer) -> str:
    """A database with every migration applied, copied for each store (faster than migrating)."""
    name = postgres_server.create_database()
    PostgresEventStore(postgres_server.dsn(name)).close()
    return name


class TestPostgresContract(EventStoreContract, PeerStoreContract):
    """The whole contract on PostgreSQL, one database per store, a pool of 10 connections."""

    @pytest.fixture()
    def new_store(self, postgres_server, schema_template):
        @contextmanager
        def make():
            name = postgres_server.create_database(template=schema_template)
            try:
                with PostgresEventStore(postgres_server.dsn(name), pool_size=10) as store:
                    yield store
            finally:
                postgres_server.drop_database(name)

        return make

    @pytest.fixture()
    def clear_store(self):
        def clear(store: PostgresEventStore) -> None:
            with store._connection() as conn:
                conn.execute("TRUNCATE events, tags, deleted_ids, deleted_addresses, referenced")

        return clear

    @pytest.fixture()
    def failing_tag_value(self):
        @contextmanager
        def failing(store: PostgresEventStore, value: str):
            with store._connection() as conn:
                conn.execute(
                    "ALTER TABLE tags ADD CONSTRAINT disk_on_fire "
                    f"CHECK (value <> convert_to('{value}', 'UTF8'))"
                )
            try:
                yield
            finally:
                with store._connection() as conn:
                    conn.execute("ALTER TABLE tags DROP CONSTRAINT disk_on_fire")

        return failing


def _migrations(dsn: str) -> list[tuple[int, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall()


def test_s19_1_migrations_applied_once_and_recorded(postgres_database):
    event = fake_event(1)
    with PostgresEventStore(postgres_database) as store:
        assert store.save(event) is SaveOutcome.SAVED
    expected = [(m.version, m.name) for m in MIGRATIONS]
    assert _migrations(postgres_database) == expected
    with PostgresEventStore(postgres_database) as store:  # reopening changes nothing
        assert store.get(event.id) == event
    assert _migrations(postgres_database) == expected


def test_s19_1_newer_schema_is_refused(postgres_database):
    PostgresEventStore(postgres_database).close()
    with psycopg.connect(postgres_database) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'future')")
    with pytest.raises(StoreError, match=f"schema version 99; this relay knows {SCHEMA_VERSION}"):
        PostgresEventStore(postgres_database)


_OPENER = textwrap.dedent("""
    import sys
    from gevent import monkey; monkey.patch_all()
    from grasp.store.postgres import PostgresEventStore
    print("ready", flush=True)
    sys.stdin.readline()
    PostgresEventStore(sys.argv[1]).close()
""")


def test_s19_1_processes_opening_at_once_apply_each_migration_once(postgres_database):
    """Relay processes of a cluster start together: the advisory lock lets one migrate, the
    others wait and then find the schema there (no error, no second row)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, postgres_database],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        for _ in range(4)
    ]
    try:
        for proc in procs:  # a barrier: all imported, then released at once
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [(proc.wait(timeout=60), proc.stderr.read()) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [code for code, _ in results] == [0] * 4, results
    assert _migrations(postgres_database) == [(m.version, m.name) for m in MIGRATIONS]


def test_unreachable_server_is_a_clear_error_without_the_password():
    url = f"postgresql://grasp:s3cret@127.0.0.1:{free_port()}/events"
    with pytest.raises(StoreError) as caught:
        PostgresEventStore(url, connect_timeout=5)
    message = str(caught.value)
    assert message.startswith("cannot open event store postgresql://grasp:***@127.0.0.1:")
    assert "s3cret" not in message


def test_wrong_password_and_missing_database_are_clear_errors(postgres_server):
    bad_password = postgres_server.dsn("postgres").replace(postgres_server.password, "wrong")
    with pytest.raises(StoreError, match="password authentication failed"):
        PostgresEventStore(bad_password)
    with pytest.raises(StoreError, match='database "no_such_db" does not exist'):
        PostgresEventStore(postgres_server.dsn("no_such_db"))


def test_pool_size_must_be_positive(postgres_database):
    with pytest.raises(ValueError, match="pool_size must be at least 1"):
        PostgresEventStore(postgres_database, pool_size=0)


def test_pool_size_bounds_the_connections_held(postgres_database):
    events = [fake_event(n) for n in range(60)]
    with PostgresEventStore(postgres_database, pool_size=2) as store:
        jobs = [gevent.spawn(store.save, event) for event in events]
        gevent.joinall(jobs, timeout=60, raise_error=True)
        assert store.count() == len(events)
        with psycopg.connect(postgres_database) as conn:
            held = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid != pg_backend_pid()"
            ).fetchone()[0]
        assert 1 <= held <= 2


def test_a_query_waiting_for_the_server_leaves_the_hub_running(postgres_database):
    """While one greenlet's query waits on a table lock, other greenlets keep running.

    If the driver blocked the hub, the lock holder (this greenlet) could never run again; the
    server ends the holder's session after 5 s, so the test then fails instead of hanging.
    """
    with PostgresEventStore(postgres_database) as store:
        store.save(fake_event(1))
        with psycopg.connect(postgres_database) as holder:
            holder.execute("SET idle_in_transaction_session_timeout = '5s'")
            holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            waiting = gevent.spawn(store.count)
            ticks = 0
            while ticks < 20 and not waiting.ready():
                gevent.sleep(0.01)
                ticks += 1
            assert ticks == 20 and not waiting.ready(), "the hub stalled behind a waiting query"
            holder.rollback()
        assert waiting.get(timeout=10) == 1


def test_s11_1_selective_filters_use_an_index(postgres_database):
    """With statistics (ANALYZE), ids, tags and authors are read through their indexes."""
    with PostgresEventStore(postgres_database) as store:
        for n in range(3000):
            store.save(fake_event(n))
        with store._connection() as conn:
            conn.execute("ANALYZE")
        cases = {
            "ids": Filter(ids=[fake_event(7).id]),
            "tag": Filter(tags={"t": ["topic3"]}, limit=20),
            "authors": Filter(authors=[f"{3:064x}"], limit=20),
            "since": Filter(since=1_002_990),
        }
        for name, flt in cases.items():
            plan = "\n".join(store.query_plan(flt))
            assert "Seq Scan on events" not in plan, f"{name}: {plan}"
            assert "Index" in plan, f"{name}: {plan}"


def test_a_lost_connection_is_a_store_error_and_the_pool_recovers(postgres_database):
    with PostgresEventStore(postgres_database, pool_size=1) as store:
        store.save(fake_event(1))
        with psycopg.connect(postgres_database, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid != pg_backend_pid()"
            )
        with pytest.raises(StoreError, match="unavailable"):
            store.count()
        assert wait_for(lambda: _count_or_none(store) == 1, timeout=15)


def _count_or_none(store: PostgresEventStore) -> int | None:
    try:
        return store.count()
    except StoreError:
        return None
