"""Test-wide setup: gevent patching first, a scrubbed git environment, no leftover actors.

``patch_all()`` must run before anything imports ``threading`` or ``socket`` for real use,
so it is the first statement of the first conftest pytest loads (python-ecosystem.md §3).
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402

import pykka  # noqa: E402
import pytest  # noqa: E402

# Variables that would let the developer's git configuration leak into tests (dulwich's
# compat tests scrub the same set).
_GIT_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_NAMESPACE",
    "GIT_PROTOCOL",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
)


@pytest.fixture(autouse=True, scope="session")
def scrubbed_git_env(tmp_path_factory):
    """Give every git invocation an empty HOME and no system or global config."""
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    for name in _GIT_VARS:
        os.environ.pop(name, None)
    for name in list(os.environ):
        if name.startswith("GIT_CONFIG_KEY_") or name.startswith("GIT_CONFIG_VALUE_"):
            del os.environ[name]
    os.environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.invalid",
        GIT_COMMITTER_NAME="Test Committer",
        GIT_COMMITTER_EMAIL="committer@example.invalid",
        GIT_AUTHOR_DATE="1700000000 +0000",
        GIT_COMMITTER_DATE="1700000000 +0000",
    )
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
