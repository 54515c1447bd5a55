"""Fixtures of the store tests: the throw-away PostgreSQL server (tests/support/postgres.py)."""

from tests.support.postgres import postgres_database, postgres_server  # noqa: F401
