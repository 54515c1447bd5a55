"""Keeping CPU-heavy git work off the gevent hub (S7.4).

Under gevent every greenlet shares one OS thread: a pack indexed in a greenlet froze a whole test
process for seconds (python-ecosystem.md §2g).  Two tools:

* :func:`call_off_hub` runs a function in a small dedicated thread pool (not the hub's default
  pool, which gevent's DNS resolver also uses) and waits for it cooperatively;
* :func:`run_git` runs the ``git`` CLI through ``gevent.subprocess``, which waits on the pipes
  without blocking the hub whether or not the process was monkey-patched.

A thread cannot be interrupted: ``gevent.Timeout`` or ``Greenlet.kill`` only stop the *waiting*
greenlet.  ``call_off_hub`` therefore takes an ``abandon`` callback that runs once the thread has
really finished, so a caller can clean up what the thread was writing without racing it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

from gevent import subprocess as gsubprocess
from gevent.threadpool import ThreadPool

from grasp.git.errors import GitCommandError

logger = logging.getLogger(__name__)

T = TypeVar("T")

PACK_THREADS = 2
_pool: ThreadPool | None = None

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


def pack_pool() -> ThreadPool:
    """The process-wide thread pool for pack work (created on first use, in the hub's thread)."""
    global _pool
    if _pool is None:
        _pool = ThreadPool(PACK_THREADS)
    return _pool


def call_off_hub(fn: Callable[..., T], *args: object, abandon: Callable[[], None] | None = None) -> T:
    """Run ``fn(*args)`` in the pack pool and wait for it without blocking the hub.

    If ``fn`` raises, or the waiting greenlet is interrupted, ``abandon`` (when given) is called
    exactly once, after ``fn`` has stopped running; then the exception propagates.
    """
    result = pack_pool().spawn(fn, *args)
    try:
        return result.get()
    except BaseException:
        if abandon is not None:
            if result.ready():
                abandon()
            else:
                logger.debug("waiter interrupted; %s keeps running and is cleaned up when it ends", fn)
                result.rawlink(lambda _result: abandon())
        raise


def git_env() -> dict[str, str]:
    """The environment for git subprocesses: ours minus repository redirections, no prompts."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_LOCATION_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def run_git(args: Sequence[str], *, input: bytes | None = None, timeout: float | None = None) -> bytes:
    """Run ``git <args>`` cooperatively; returns stdout, raises :class:`GitCommandError`."""
    cmd = ["git", *args]
    proc = gsubprocess.Popen(
        cmd,
        stdin=gsubprocess.PIPE if input is not None else gsubprocess.DEVNULL,
        stdout=gsubprocess.PIPE,
        stderr=gsubprocess.PIPE,
        env=git_env(),
    )
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise GitCommandError(cmd, proc.returncode, err.decode("utf-8", "replace"))
    return out
