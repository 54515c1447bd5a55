"""open_store (S19.1): the engine follows from ``--database``'s value, a URL or a path."""

from __future__ import annotations

import pytest

from grasp.nostr.filters import Filter
from grasp.store import EventStore, StoreError, open_store
from grasp.store.postgres import PostgresEventStore, redact
from grasp.store.sqlite import DEFAULT_FILENAME, SqliteEventStore
from tests.store.corpus import fake_event


def test_s19_1_a_path_opens_sqlite_and_a_directory_means_its_default_file(tmp_path):
    with open_store(tmp_path / "x.sqlite3") as store:
        assert isinstance(store, SqliteEventStore) and isinstance(store, EventStore)
        assert store.location == str(tmp_path / "x.sqlite3")
    with open_store(str(tmp_path)) as store:
        assert store.location == str(tmp_path / DEFAULT_FILENAME)
    assert (tmp_path / DEFAULT_FILENAME).is_file()


def test_s19_1_a_postgresql_url_opens_postgresql(postgres_database):
    event = fake_event(3)
    with open_store(postgres_database, pool_size=2) as store:
        assert isinstance(store, PostgresEventStore) and isinstance(store, EventStore)
        assert store.save(event).stored
        assert store.query([Filter(ids=[event.id])]) == [event]
        assert "***" in store.location and store.url not in store.location
    short = postgres_database.replace("postgresql://", "postgres://", 1)
    with open_store(short) as store:
        assert store.contains(event.id)


@pytest.mark.parametrize("url", ["mysql://u:p@h/db", "sqlite:///tmp/x", "http://x"])
def test_s19_1_other_urls_are_a_clear_error(url):
    scheme = url.split("://")[0]
    with pytest.raises(StoreError, match=f"unsupported database URL scheme '{scheme}'"):
        open_store(url)


def test_redact_hides_only_the_password():
    assert (
        redact("postgresql://u:pw@db.example:5433/events")
        == "postgresql://u:***@db.example:5433/events"
    )
    assert redact("postgresql://u@db/events") == "postgresql://u@db/events"
    assert (
        redact("postgresql://u:p%40ss@db/events?sslmode=require")
        == "postgresql://u:***@db/events?sslmode=require"
    )
    assert redact("postgresql://u:pw@[::1]:5432/events") == "postgresql://u:***@[::1]:5432/events"
