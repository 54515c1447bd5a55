"""Running the git CLI without blocking the gevent hub (S7.4).

Under gevent every greenlet shares one OS thread: CPU-heavy pack work done in a greenlet froze a
whole test process for seconds (python-ecosystem.md §2g; dulwich indexing a 3.5 MiB pack on the
hub stalled it for 450 ms here).  The heavy work of this package - indexing a received pack and
copying objects between local repositories - is therefore done by ``git`` subprocesses, started
through ``posix_spawn`` (:class:`SpawnedProcess`): their pipes are waited on cooperatively whether
or not the process was monkey-patched, and unlike a worker thread a subprocess *can* be stopped,
so a deadline (``gevent.Timeout``) that fires mid-way kills it and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from typing import IO

import gevent
import gevent.event
import gevent.os
from gevent.monkey import get_original

from grasp.git.errors import GitCommandError

logger = logging.getLogger(__name__)

# the C call itself: gevent's patched one would start a second child watcher of its own
_posix_spawnp = get_original("os", "posix_spawnp")
# gevent >= 25.8 patches ``os.close`` to close non-regular files only at the loop's next
# iteration (in case an I/O watcher still uses the descriptor).  Descriptors that never had a
# watcher (the child's ends, /dev/null, every pipe of a spawn that failed) are closed at once
# with the real call: deferred, a failed spawn (git missing from PATH) held 5 descriptors open
# until the hub next ran, which a caller that does not yield in between saw as a leak.
_close_now = get_original("os", "close")

#: Capacity asked for a child's stdin pipe (Linux's default is 64 KiB, about one side-band
#: packet).  Streaming the 3.5 MB history pack into index-pack, 1 MiB against 64 KiB, three
#: alternated pairs of 10 fetches: the relay's CPU per fetch 40-50 ms against 55-60 ms (fewer
#: full-pipe waits) and the server's last byte 24-120 ms earlier (P5, issue 16).
STDIN_PIPE_BYTES = 1 << 20

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
    proc = SpawnedProcess(cmd, stdin=stdin, feed=input)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        logger.debug("killed %s", " ".join(cmd[:4]))
        raise
    if proc.returncode:
        raise GitCommandError(cmd, proc.returncode, err.decode("utf-8", "replace"))
    return out


class SpawnedProcess:
    """A child started by ``posix_spawn`` (vfork + exec), waited on cooperatively.

    ``gevent.subprocess`` forks the whole relay process first (``fork_and_watch``, then exec):
    copying the page tables of a big process and running gevent's fork hooks was 12-17 % of
    the relay's samples while syncing (P6, issue 16), for every ``git index-pack``.
    ``posix_spawn`` shares the parent's memory until the exec. Only descriptors 0-2 are meant
    for the child; every other descriptor Python opens is close-on-exec (PEP 446). The exit is
    collected by a libev child watcher started before the hub can run, so the SIGCHLD cannot
    be missed; the pipes are read with gevent's non-blocking helpers.
    """

    def __init__(
        self,
        args: list[str],
        *,
        stdin: IO[bytes] | None = None,
        feed: bytes | None = None,
        stdin_pipe: bool = False,
    ) -> None:
        self.args = args
        self.returncode: int | None = None
        self._jobs: list[gevent.Greenlet] = []
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r = in_w = -1
        if stdin_pipe:  # written with :meth:`write` while the child reads (a streamed pack)
            in_r, in_w = os.pipe()
            os.set_blocking(in_w, False)
            with contextlib.suppress(OSError):  # best effort: the limit is pipe-max-size
                fcntl.fcntl(in_w, fcntl.F_SETPIPE_SZ, STDIN_PIPE_BYTES)
            child_in = in_r
        elif feed is not None:
            # ``input`` goes through an unlinked temporary file, not a pipe: with a pipe as
            # stdin, children of this class were seen to hang unreaped (cause not found in
            # the time there was); a regular file, as index-pack's spool is, works
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after the spawn
            spool.write(feed)
            spool.flush()
            spool.seek(0)
            in_r = os.dup(spool.fileno())
            spool.close()
            child_in = in_r
        elif stdin is not None:
            child_in = stdin.fileno()
        else:
            child_in = in_r = os.open(os.devnull, os.O_RDONLY)
        actions = [
            (os.POSIX_SPAWN_DUP2, child_in, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ]
        loop = gevent.get_hub().loop
        loop.install_sigchld()  # what gevent.subprocess does before each child
        self._exited = gevent.event.Event()
        try:
            self.pid = _posix_spawnp(args[0], args, git_env(), file_actions=actions)
            # started before the hub can run again, so the child's exit cannot be missed
            self._watcher = loop.child(self.pid, False)
            self._watcher.start(self._on_exit)
        except BaseException:  # no child (git not found, ...): none of the pipes is needed
            for fd in (out_r, err_r, in_w):
                if fd >= 0:
                    _close_now(fd)
            raise
        finally:
            for fd in (out_w, err_w, in_r):
                if fd >= 0:
                    _close_now(fd)
        self._out, self._err, self._in = out_r, err_r, in_w
        if stdin_pipe:
            # read from the start: a child blocked writing stderr would stop reading stdin
            self._jobs = [gevent.spawn(_read_all, out_r), gevent.spawn(_read_all, err_r)]

    def write(self, data: bytes | memoryview) -> None:
        """All of ``data`` to the child's stdin pipe, waiting cooperatively while it is full.
        Raises ``BrokenPipeError`` once the child has stopped reading (it exited)."""
        view = memoryview(data)
        while view:
            view = view[gevent.os.nb_write(self._in, view) :]

    def close_stdin(self) -> None:
        """End of input: the child sees EOF (no watcher is left on the descriptor)."""
        if self._in >= 0:
            _close_now(self._in)
            self._in = -1

    def _on_exit(self) -> None:
        self._watcher.stop()
        self.returncode = _returncode(self._watcher.rstatus)
        self._exited.set()

    def communicate(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        """Read stdout and stderr to their ends, wait for the exit."""
        self.close_stdin()
        with gevent.Timeout(timeout, subprocess.TimeoutExpired(self.args, timeout or 0)):
            jobs = self._jobs or [
                gevent.spawn(_read_all, self._out),
                gevent.spawn(_read_all, self._err),
            ]
            try:
                gevent.joinall(jobs, raise_error=True)
            finally:
                gevent.killall(jobs)
            self.wait()
        return jobs[0].value, jobs[1].value

    def wait(self) -> int:
        """Wait for the exit (cooperatively), close the pipes; the return code.

        The child watcher does not always fire (a child was seen left a zombie, its SIGCHLD
        never handled), so the exit is also polled with ``WNOHANG``, backing off from 0.5 ms
        to 50 ms; whichever sees it first provides the status.
        """
        delay = 0.0005
        while not self._exited.is_set():
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # libev reaped it: its watcher has the status
                self._exited.wait()
                break
            if pid:
                self._watcher.stop()
                self.returncode = _returncode(status)
                self._exited.set()
                break
            self._exited.wait(delay)
            delay = min(delay * 2, 0.05)
        gevent.killall(self._jobs)  # readers of a child killed before communicate()
        for fd in (self._out, self._err, self._in):
            if fd >= 0:
                os.close(fd)
        self._out = self._err = self._in = -1
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if not self._exited.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def _returncode(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    while True:
        chunk = gevent.os.nb_read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
