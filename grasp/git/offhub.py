"""Running the git CLI without blocking the gevent hub (S7.4).

Under gevent every greenlet shares one OS thread: CPU-heavy pack work done in a greenlet froze a
whole test process for seconds (python-ecosystem.md §2g; dulwich indexing a 3.5 MiB pack on the
hub stalled it for 450 ms here).  The heavy work of this package - indexing a received pack and
copying objects between local repositories - is therefore done by ``git`` subprocesses, started
through ``gevent.subprocess``: their pipes are waited on cooperatively whether or not the process
was monkey-patched, and unlike a worker thread a subprocess *can* be stopped, so a deadline
(``gevent.Timeout``) that fires mid-way kills it and leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import IO

from gevent import subprocess as gsubprocess

from grasp.git.errors import GitCommandError

logger = logging.getLogger(__name__)

# Variables that would point a git subprocess at some other repository than the one we name.
_REPO_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_QUARANTINE_PATH",
)


def git_env() -> dict[str, str]:
    """The environment for git subprocesses: ours minus repository redirections, no prompts."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_LOCATION_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def run_git(
    args: Sequence[str],
    *,
    input: bytes | None = None,
    stdin: IO[bytes] | None = None,
    timeout: float | None = None,
) -> bytes:
    """Run ``git <args>`` cooperatively; returns stdout, raises :class:`GitCommandError`.

    ``stdin`` may be a real file (it is handed to the process as is).  If the calling greenlet
    is interrupted (``gevent.Timeout``, kill), the process is killed and reaped before the
    exception propagates, so nothing it was writing can appear afterwards.
    """
    if input is not None and stdin is not None:
        raise ValueError("give input or stdin, not both")
    cmd = ["git", *args]
    proc = gsubprocess.Popen(
        cmd,
        stdin=gsubprocess.PIPE
        if input is not None
        else (stdin if stdin is not None else gsubprocess.DEVNULL),
        stdout=gsubprocess.PIPE,
        stderr=gsubprocess.PIPE,
        env=git_env(),
    )
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        logger.debug("killed %s", " ".join(cmd[:4]))
        raise
    if proc.returncode != 0:
        raise GitCommandError(cmd, proc.returncode, err.decode("utf-8", "replace"))
    return out
