"""Turning a received pack into objects of a repository: all or nothing, off the hub.

The pack arrives into a :class:`PackSpool` (memory, then an anonymous temporary file in the
repository's objects directory, so nothing is left behind if the process dies).  Only when the
transfer succeeded does :func:`ingest_pack` index it, and it does so in a private *staging*
object store (``objects/incoming-grasp-*``) whose alternate is the repository itself, so
dulwich can complete a thin pack against the repository's objects without writing into it.
The finished pack and index are then renamed into ``objects/pack`` by the waiting greenlet,
which cannot be interrupted between the two renames (they do not yield).

This is what makes every failure (S7.2) leave the repository exactly as it was, including a
deadline that fires while the pack is still being indexed in its thread: the thread's output is
then discarded once it ends (see :func:`grasp.git.offhub.call_off_hub`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from dulwich.object_store import DiskObjectStore

from grasp.git.offhub import call_off_hub

logger = logging.getLogger(__name__)

STAGING_PREFIX = "incoming-grasp-"
_SPOOL_IN_MEMORY = 8 << 20


class PackSpool:
    """Where pack bytes go while they arrive (the ``pack_data`` sink of dulwich's fetch_pack)."""

    def __init__(self, directory: Path) -> None:
        self.size = 0
        self._file = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY, dir=directory)

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self.size += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def rewind(self) -> None:
        self._file.seek(0)

    def close(self) -> None:
        self._file.close()


def ingest_pack(objects_dir: Path, spool: PackSpool) -> list[str]:
    """Index the spooled (possibly thin) pack off the hub and move it into ``objects/pack``.

    Returns the names of the pack files added (none when an identical pack was present).
    Takes ownership of ``spool``.  Raises whatever dulwich raises for a corrupt pack; the
    repository is then unchanged.
    """
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=objects_dir))

    def discard() -> None:
        shutil.rmtree(staging, ignore_errors=True)
        spool.close()

    call_off_hub(_index_in_staging, staging, objects_dir, spool, abandon=discard)
    try:
        return _move_into_place(staging / "pack", objects_dir / "pack")
    finally:
        discard()


def _index_in_staging(staging: Path, objects_dir: Path, spool: PackSpool) -> None:
    """Runs in a worker thread: complete and index the pack inside the staging store."""
    (staging / "pack").mkdir()
    store = DiskObjectStore(str(staging), alternates=[str(objects_dir)])
    try:
        spool.rewind()
        pack = store.add_thin_pack(spool.read, None)
        pack.close()
    finally:
        store.close()


def _move_into_place(staged_pack_dir: Path, pack_dir: Path) -> list[str]:
    """Rename each staged pack, then its index (git ignores a pack until its index exists)."""
    added = []
    for staged in sorted(staged_pack_dir.glob("pack-*.pack")):
        index = staged.with_suffix(".idx")
        target = pack_dir / staged.name
        if (pack_dir / index.name).exists():
            continue  # the very same pack (same objects) is already installed
        os.replace(staged, target)
        os.replace(index, pack_dir / index.name)
        added.append(staged.name)
        logger.debug("installed %s", target)
    return added
