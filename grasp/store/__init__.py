"""Event storage (S11, S19.1): one interface, :class:`~grasp.store.base.EventStore`, on SQLite
(the embedded default) or PostgreSQL (a cluster); :func:`open_store` picks the engine."""

from __future__ import annotations

from pathlib import Path

from grasp.store.base import DEFAULT_LIMIT_CAP, EventStore, SaveOutcome, StoreError

__all__ = ["DEFAULT_LIMIT_CAP", "EventStore", "SaveOutcome", "StoreError", "open_store"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(target: str | Path, *, pool_size: int | None = None) -> EventStore:
    """Open the event store named by ``target`` (what ``--database`` will give, S19.1).

    - ``postgresql://user:password@host:port/dbname`` (or ``postgres://``): PostgreSQL, with a
      pool of ``pool_size`` connections (default :data:`grasp.store.postgres.DEFAULT_POOL_SIZE`);
      the schema migrations are applied on open.
    - a path: that SQLite file, created on first use; an existing directory means the default
      file inside it (``<data-dir>/events.sqlite3``, S11.1).

    Any other ``scheme://`` is a :class:`StoreError`, as is a database that cannot be opened.
    The engine modules are imported here, on use, so a SQLite relay never loads the driver.
    """
    text = str(target)
    if text.startswith(_POSTGRES_SCHEMES):
        from grasp.store.postgres import DEFAULT_POOL_SIZE, PostgresEventStore

        size = DEFAULT_POOL_SIZE if pool_size is None else pool_size
        return PostgresEventStore(text, pool_size=size)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreError(
            f"unsupported database URL scheme {scheme!r}: use postgresql://… "
            "or a path to a SQLite file"
        )
    from grasp.store.sqlite import DEFAULT_FILENAME, SqliteEventStore

    path = Path(target)
    return SqliteEventStore(path / DEFAULT_FILENAME if path.is_dir() else path)
