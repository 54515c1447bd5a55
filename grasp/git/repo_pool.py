"""Empty bare repositories made ahead of need: a held announcement's repository is one rename.

GRASP-01 :34 (``reference/protocol.md`` §4.4): the empty bare repository of an accepted
announcement exists *immediately*, before the ``OK``, so that the push which follows can land.
:func:`grasp.git.repos.create_bare_repo` already lays out only what git and dulwich need
(HEAD, config, ``objects/``, ``refs/``), but that is still three new inodes, and on this
machine's ext4 a new inode costs 0.3-0.5 ms of kernel time where a rename costs 0.05 ms and a
hard link 0.02 ms (2,000 of each, ``/tmp`` on the 2-core VM; tmpfs: 0.01 ms for all of them).
The three ``mkdir`` calls were 69 % of a held announcement's write-policy time (py-spy, P7).

:class:`EmptyRepoPool` keeps up to ``size`` complete empty repositories under private names
``<repos>/.init-<pid>@<host>-<token>.<n>`` — the names start-up cleanup already removes once
their process is gone (:func:`grasp.git.repos.remove_interrupted_work`) — and moves one to the
repository's path with a single ``rename``: the repository exists before the ``OK``, whole or
not at all, exactly as before. A worker thread of gevent's thread pool refills it; ``mkdir``
releases the GIL, so the hub keeps serving while the kernel allocates. An empty pool (a burst
longer than ``size``, a refill that failed) is no error: the repository is then made in place.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import gevent
from gevent.monkey import get_original

from grasp.git.repos import TEMPLATE_NAME, create_bare_repo, lay_out_empty_repo, new_init_dir

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_POOL_SIZE", "EmptyRepoPool"]

#: A burst absorber, not a store: 64 x 12 KiB on disk at most. Under sustained intake the
#: refill thread, not the pool's depth, decides how many come ready-made.
DEFAULT_POOL_SIZE = 64
#: After a refill failed (disk full, repos root unwritable) wait this long before the next
#: try, so a broken disk costs one warning a minute instead of one per announcement.
RETRY_SECS = 60.0
_CLOSE_WAIT_SECS = 5.0

_OsLock = get_original("_thread", "allocate_lock")


def _in_thread_pool(work: Callable[[], None]) -> object:
    return gevent.get_hub().threadpool.spawn(work)


class EmptyRepoPool:
    """Ready-made empty bare repositories below ``repos_root`` (``<data>/repos``).

    :meth:`create` has the contract of :func:`~grasp.git.repos.create_bare_repo` for paths
    below ``repos_root``. Only the hub calls :meth:`create`; the refill thread only appends.
    ``spawn`` runs the refill (gevent's thread pool by default; tests pass their own).
    """

    def __init__(
        self,
        repos_root: Path,
        size: int = DEFAULT_POOL_SIZE,
        *,
        spawn: Callable[[Callable[[], None]], object] = _in_thread_pool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = os.fspath(repos_root)
        self.size = size
        self.template = os.path.join(self.root, TEMPLATE_NAME)
        # a refill starts once half the pool is used: starting a thread-pool task for every
        # repository taken cost as much hub time as the rename itself (py-spy, P7)
        self._low_water = size // 2
        self._spawn = spawn
        self._clock = clock
        self._ready: deque[str] = deque()
        self._lock = _OsLock()  # guards _filling: set by the hub, cleared by the thread
        self._filling = False
        self._closed = False
        self._failed_at: float | None = None
        self._failure: str | None = None  # the refill thread's error, logged by the hub

    @property
    def ready(self) -> int:
        """How many empty repositories are ready to be moved into place."""
        return len(self._ready)

    def start(self) -> None:
        """Begin filling the pool (in the background)."""
        self._refill()

    def create(self, path: Path) -> Path:
        """Make the bare repository ``path`` unless it exists; return ``path``.

        No ``exists`` check first: the rename fails on an existing repository (and the entry
        goes back), so a new repository costs one lookup of its name, not two (P7)."""
        try:
            while True:
                try:
                    entry = self._ready.popleft()
                except IndexError:
                    return create_bare_repo(path)  # none ready: made in place, as before
                if self._move(entry, path):
                    return path
        finally:
            self._refill()

    def close(self) -> None:
        """Stop refilling; wait (bounded) for a running refill; remove what is still ready.

        What a refill still holds past the wait is this process's ``.init-`` directory, which
        the next start removes."""
        self._closed = True
        deadline = time.monotonic() + _CLOSE_WAIT_SECS
        while self._filling and time.monotonic() < deadline:
            gevent.sleep(0.005)
        while self._ready:
            shutil.rmtree(self._ready.popleft(), ignore_errors=True)

    # --- internals ----------------------------------------------------------------------------

    def _move(self, entry: str, path: Path) -> bool:
        """Rename ``entry`` to ``path``; True when ``path`` is a repository now, False when
        ``entry`` is unusable (then it is gone)."""
        for _ in range(2):  # a second try after making a new owner's directory
            try:
                os.rename(entry, path)
            except FileNotFoundError:
                if not os.path.isdir(entry):
                    return False  # removed under us (another node's start-up cleanup, S19.2)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                continue
            except OSError:  # ENOTEMPTY, EEXIST, ENOTDIR: something is at ``path`` already
                if not os.path.exists(path):
                    shutil.rmtree(entry, ignore_errors=True)
                    raise
                self._ready.appendleft(entry)  # the repository exists: keep the entry
                return True
            logger.info("created repository %s", path)
            return True
        shutil.rmtree(entry, ignore_errors=True)
        return False

    def _refill(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:  # logged here: the thread never takes the (gevent) log locks
            logger.warning("could not prepare an empty repository in %s: %s", self.root, failure)
        with self._lock:
            if self._filling or self._closed or len(self._ready) > self._low_water:
                return
            if self.size <= 0:  # a pool of none: every repository is made in place
                return
            if self._failed_at is not None and self._clock() - self._failed_at < RETRY_SECS:
                return
            self._filling = True
        try:
            self._spawn(self._fill)
        except Exception:
            logger.exception("could not start refilling the empty repository pool")
            with self._lock:
                self._filling = False

    def _fill(self) -> None:
        """The refill thread: build entries until the pool is full or closed."""
        try:
            while not self._closed and len(self._ready) < self.size:
                self._ready.append(self._build())
            self._failed_at = None
        except OSError as exc:
            self._failed_at = self._clock()
            self._failure = str(exc)
        finally:
            with self._lock:
                self._filling = False

    def _build(self) -> str:
        entry = new_init_dir(self.root)
        try:
            lay_out_empty_repo(entry, self.template)
        except OSError:
            shutil.rmtree(entry, ignore_errors=True)
            raise
        return entry
