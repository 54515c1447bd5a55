"""Test-wide setup: gevent patching first, a scrubbed git environment, no leftover actors.

``patch_all()`` must run before anything imports ``threading`` or ``socket`` for real use,
so it is the first statement of the first conftest pytest loads (python-ecosystem.md §3).
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402

import pykka  # noqa: E402
import pytest  # noqa: E402


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
    leftover = pykka.ActorRegistry.get_all()
    pykka.ActorRegistry.stop_all()
    assert not leftover, f"test left actors running: {leftover}"
