"""Fixtures of the cluster tests (S19.2): the throw-away PostgreSQL server and a node factory."""

from tests.cluster.nodes import cluster  # noqa: F401
from tests.support.postgres import postgres_database, postgres_server  # noqa: F401
