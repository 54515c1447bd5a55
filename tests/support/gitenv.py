"""A git environment with no user or system configuration, for tests and benchmarks.

dulwich's compat tests scrub the same way: whatever the developer's shell or ~/.gitconfig says
(credential helpers, protocol versions, hooks) must not change what git does under test.
"""

from __future__ import annotations

import os
from pathlib import Path


def scrub_git_env(home: Path, name: str = "Test", fixed_dates: bool = False) -> None:
    """Drop every ``GIT_*`` variable, point HOME at ``home``, set a fixed identity.

    With ``fixed_dates`` commits made through the CLI get a fixed timestamp too (deterministic
    object ids; vary content to get distinct commits).
    """
    for variable in list(os.environ):
        if variable.startswith("GIT_"):
            del os.environ[variable]
    email = f"{name.lower()}@example.invalid"
    os.environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME=name,
        GIT_AUTHOR_EMAIL=email,
        GIT_COMMITTER_NAME=name,
        GIT_COMMITTER_EMAIL=email,
    )
    if fixed_dates:
        os.environ.update(GIT_AUTHOR_DATE="1700000000 +0000", GIT_COMMITTER_DATE="1700000000 +0000")
