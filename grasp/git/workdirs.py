"""Names of in-progress work directories, and whether one is abandoned (S19.2, one truth).

Three things are built next to their final place and renamed or removed when done: a bare
repository being initialised (``<npub>/.init-*``), a fetched pack being indexed
(``<repo>/objects/incoming-grasp-*``) and a small pack's temporary files
(``<repo>/objects/pack/tmp_grasp_*``, files, not directories). A process killed meanwhile
leaves them behind, and the next start removes them. In a cluster every node shares
``--data-dir``, so a starting node must tell a dead process's leftovers from a live node's
work: each name carries its owner, ``<prefix><pid>@<host>-<random>``.

A directory is abandoned when its owner ran on this host and that process is gone (or is the
starting process itself: it has done nothing yet), or, for owners on other hosts (whose
processes cannot be seen from here) and for a pid this host may have reused, when it is older
than :data:`STALE_SECS` — far longer than any fetch may run (S7.2). Names without an owner
come from relays before this scheme and are leftovers.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from pathlib import Path

__all__ = ["STALE_SECS", "is_abandoned", "make_workdir", "owner_tag"]

#: One hour: a fetch has a deadline of minutes (``--fetch-timeout-secs``), an init milliseconds.
STALE_SECS = 3600.0
_OWNED = re.compile(r"(\d+)@(.+)-[^-]+")


def owner_tag() -> str:
    """``<pid>@<host>`` of this process."""
    return f"{os.getpid()}@{socket.gethostname()}"


def make_workdir(prefix: str, parent: Path) -> Path:
    """A new directory ``<parent>/<prefix><pid>@<host>-<random>``."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}-", dir=parent))


def is_abandoned(path: Path, prefix: str, now: float | None = None) -> bool:
    """Whether the work directory ``path`` (named with ``prefix``) may be removed."""
    match = _OWNED.fullmatch(path.name[len(prefix) :])
    if match is None:
        return True  # a name from before owners were recorded
    pid, host = int(match.group(1)), match.group(2)
    if host == socket.gethostname() and not _alive(pid):
        return True
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False  # gone already, or not ours to judge
    return age > STALE_SECS


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # the starting process has no work in progress yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
