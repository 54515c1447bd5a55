"""Test-wide setup: gevent patching first, a scrubbed git environment, no leftover actors.

``patch_all()`` must run before anything imports ``threading`` or ``socket`` for real use,
so it is the first statement of the first conftest pytest loads (python-ecosystem.md §3).
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402

import pykka  # noqa: E402
import pytest  # noqa: E402

from actors.runtime import unregistered_alive  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def scrubbed_git_env(tmp_path_factory):
    """Give every git invocation an empty HOME and no system or global config."""
    from tests.support.gitenv import scrub_git_env

    saved = dict(os.environ)
    scrub_git_env(tmp_path_factory.mktemp("home"), fixed_dates=True)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def no_leftover_actors():
    """Every test starts and ends with an empty pykka registry (Mopidy's teardown habit)."""
    yield
    leftover = pykka.ActorRegistry.get_all() + unregistered_alive()  # FetchActors: the latter
    pykka.ActorRegistry.stop_all()
    for ref in unregistered_alive():
        ref.stop()
    assert not leftover, f"test left actors running: {leftover}"


@pytest.fixture(autouse=True, scope="session")
def relays_on_postgres():
    """``GRASP_TEST_DATABASE=postgresql``: relay processes keep their events in PostgreSQL
    (S19.1); tests marked ``sqlite_only`` read the SQLite file itself and are skipped. CI
    (``.ci/run``) runs ``tests/relay tests/integration tests/conformance tests/deploy`` this way
    after the SQLite pass (docs/scaling.rst, "Tests")."""
    if os.environ.get("GRASP_TEST_DATABASE", "sqlite") != "postgresql":
        yield
        return
    from tests.support import relay
    from tests.support.postgres import PostgresServer

    with PostgresServer() as server:
        databases: dict[object, str] = {}

        def database_for(data_dir: object) -> str:
            if data_dir not in databases:
                databases[data_dir] = server.dsn(server.create_database())
            return databases[data_dir]

        relay.shared_postgres = database_for
        try:
            yield
        finally:
            relay.shared_postgres = None


def pytest_collection_modifyitems(config, items):
    if os.environ.get("GRASP_TEST_DATABASE", "sqlite") != "postgresql":
        return
    skip = pytest.mark.skip(reason="reads the SQLite event file itself (GRASP_TEST_DATABASE)")
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)
