"""The SQLite engine: the store contract (S11, S19.1) run on it, then what only SQLite has —
the file itself (S11.1): WAL, schema version, indexes used by queries, reopen, bad files,
and a gevent thread-pool worker sharing the one connection."""

import sqlite3
from contextlib import contextmanager

import gevent
import pytest
from gevent.pool import Pool

from grasp.nostr.event import sign_event
from grasp.nostr.filters import Filter
from grasp.store.peers import PeerRow
from grasp.store.sqlite import DEFAULT_FILENAME, SaveOutcome, SqliteEventStore, StoreError
from tests.store.contract import EventStoreContract
from tests.store.corpus import fake_event as _fake_event
from tests.store.peers_contract import PeerStoreContract

EventStore = SqliteEventStore


class TestSqliteContract(EventStoreContract, PeerStoreContract):
    """The whole contract on a fresh SQLite file per store."""

    @pytest.fixture()
    def new_store(self, tmp_path):
        names = iter(range(1_000_000))

        @contextmanager
        def make():
            with SqliteEventStore(tmp_path / f"events-{next(names)}.sqlite3") as store:
                yield store

        return make

    @pytest.fixture()
    def clear_store(self):
        def clear(store: SqliteEventStore) -> None:
            with store._write() as db:
                for table in ("tags", "events", "deleted_ids", "deleted_addresses", "referenced"):
                    db.execute(f"DELETE FROM {table}")

        return clear

    @pytest.fixture()
    def failing_tag_value(self):
        @contextmanager
        def failing(store: SqliteEventStore, value: str):
            with store._lock:
                store._db.execute(
                    "CREATE TEMP TRIGGER disk_on_fire BEFORE INSERT ON tags "
                    f"WHEN NEW.value = '{value}' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
                )
            try:
                yield
            finally:
                with store._lock:
                    store._db.execute("DROP TRIGGER disk_on_fire")

        return failing


def test_s11_1_wal_file_created_on_first_use_and_reopened(tmp_path):
    path = tmp_path / DEFAULT_FILENAME
    event = sign_event("01" * 32, 1, [["t", "x"]], "persisted")
    with EventStore(path) as store:
        store.save(event)
    assert path.exists()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    with EventStore(path) as store:
        assert store.query([Filter(tags={"t": ["x"]})]) == [event]
        assert store.save(event) is SaveOutcome.DUPLICATE


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / DEFAULT_FILENAME
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="schema version 99"):
        EventStore(path)


def test_s17_1_a_version_2_file_is_upgraded_to_3_with_its_events_kept(tmp_path):
    """Schema 3 adds ``peers``; a file of version 2 (no such table) gains it on open."""
    path = tmp_path / DEFAULT_FILENAME
    event = sign_event("01" * 32, 1, [["t", "x"]], "kept")
    with EventStore(path) as store:
        store.save(event)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE peers")
    db.execute("PRAGMA user_version = 2")
    db.close()
    with EventStore(path) as store:
        assert store.query([Filter(tags={"t": ["x"]})]) == [event]
        assert store.load_peers() == []
        store.save_peer(PeerRow("wss://a.example", "bootstrap", 1.0))
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == 3


def test_non_sqlite_file_is_a_clear_error(tmp_path):
    path = tmp_path / DEFAULT_FILENAME
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open event store"):
        EventStore(path)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    with EventStore(tmp_path_factory.mktemp("plan") / DEFAULT_FILENAME) as store:
        for n in range(3000):
            store.save(_fake_event(n))
        yield store


PLANS = [
    ("ids", Filter(ids=[_fake_event(7).id]), "USING INDEX sqlite_autoindex_events_1 (id=?)"),
    ("authors", Filter(authors=[f"{3:064x}"]), "USING INDEX events_author (pubkey=?)"),
    (
        "authors + kinds",
        Filter(authors=[f"{3:064x}"], kinds=[1, 7]),
        "USING INDEX events_author (pubkey=? AND kind=?)",
    ),
    (
        "kinds + #p",
        Filter(kinds=[1], tags={"p": [f"{3:064x}"]}),
        "USING COVERING INDEX tags_lookup (name=? AND value=?)",
    ),
    (
        "ids + kinds",
        Filter(ids=[_fake_event(7).id], kinds=[1]),
        "USING INDEX sqlite_autoindex_events_1 (id=?)",
    ),
    ("kinds", Filter(kinds=[7]), "USING INDEX events_kind (kind=?)"),
    (
        "tag",
        Filter(tags={"t": ["topic3"]}),
        "USING COVERING INDEX tags_lookup (name=? AND value=?)",
    ),
    (
        "repo lookup",
        Filter(kinds=[30617, 30618], tags={"d": ["repo3"]}),
        "USING COVERING INDEX tags_lookup",
    ),
    ("since", Filter(since=1_002_900), "USING INDEX events_created (created_at>?)"),
]


@pytest.mark.parametrize("flt, expected", [p[1:] for p in PLANS], ids=[p[0] for p in PLANS])
def test_s11_1_queries_use_indexes(big_store, flt, expected):
    """Each filter is driven by the index of its most selective key, never a table walk.

    ``kinds`` + ``#p`` and ``authors`` + ``kinds`` are the cases SQLite's own guess (without
    statistics) got wrong by walking every event of the kind.
    """
    plan = big_store.query_plan(flt)
    assert any(expected in line for line in plan), plan
    assert not any(line.startswith("SCAN") for line in plan), plan
    assert (
        "events_kind" not in " ".join(plan)
        or flt.kinds
        and not (flt.tags or flt.authors or flt.ids)
    )


def test_unconstrained_query_walks_the_time_index_only_up_to_limit(big_store):
    plan = big_store.query_plan(Filter(limit=10))
    assert plan[0] == "SCAN e USING INDEX events_created", plan
    got = big_store.query([Filter(limit=10)])
    assert [e.created_at for e in got] == list(range(1_002_999, 1_002_989, -1))


def test_concurrent_greenlets_and_threads_share_one_store(tmp_path):
    """Relay greenlets and a thread-pool worker save and query at once without errors."""
    with EventStore(tmp_path / DEFAULT_FILENAME) as store:
        events = [_fake_event(n, kinds=(1, 7)) for n in range(400)]

        def work(chunk):
            for event in chunk:
                assert store.save(event) is SaveOutcome.SAVED
                assert store.contains(event.id)
                store.query([Filter(authors=[event.pubkey], limit=5)])

        pool = Pool(8)
        chunks = [events[i::10] for i in range(10)]
        threaded = gevent.get_hub().threadpool.spawn(work, chunks[0])
        pool.map(work, chunks[1:])
        threaded.get(timeout=30)
        assert store.count() == len(events)


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="cannot open event store"):
        EventStore(tmp_path / "no" / "such" / DEFAULT_FILENAME)


def test_s15_1_referenced_ids_survive_a_reopen(tmp_path):
    path = tmp_path / "events.sqlite3"
    with SqliteEventStore(path) as store:
        store.add_references("ab" * 32, ["cd" * 32])
    with SqliteEventStore(path) as store:
        assert store.referrer_of(["cd" * 32]) == "ab" * 32
