"""Object existence and local object copies between repositories on this disk.

``copy_objects`` shells out to ``git fetch <local path> <oid>...`` rather than using dulwich:
measured 10x faster on a 15,622-object history (0.41 s against 4-5 s), and as a subprocess it
costs the gevent hub nothing (python-ecosystem.md §2d, §2g).  Protocol v2 is forced so that
unreferenced objects (fetched but not yet released) can be wanted by id.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from dulwich.repo import Repo

from grasp.git.errors import AbsentObjectError
from grasp.git.offhub import run_git

logger = logging.getLogger(__name__)

_OID = re.compile(r"[0-9a-f]{40}")
_LOOSE_DIR = re.compile(r"[0-9a-f]{2}")

# Config for the local fetch: v2 (any object may be wanted), and no background work in the
# destination (gc or maintenance could repack while the release is still running).
_COPY_CONFIG = (
    "protocol.version=2",
    "uploadpack.allowAnySHA1InWant=true",
    "gc.auto=0",
    "maintenance.auto=false",
    "fetch.writeCommitGraph=false",
)


def normalise_oids(oids: Iterable[str]) -> list[str]:
    """Validate SHA-1 object ids (40 lowercase hex digits) and drop duplicates, keeping order."""
    if isinstance(oids, (str, bytes)):
        raise TypeError("expected a collection of object ids, not a single string")
    seen: dict[str, None] = {}
    for oid in oids:
        if not isinstance(oid, str) or not _OID.fullmatch(oid):
            raise ValueError(f"not an object id (40 lowercase hex digits): {oid!r}")
        seen[oid] = None
    return list(seen)


def missing_oids(repo_path: Path, oids: Iterable[str]) -> set[str]:
    """The OIDs (objects of any type) that the repository does not hold."""
    wanted = normalise_oids(oids)
    if not wanted:
        return set()
    with Repo(str(repo_path)) as repo:
        store = repo.object_store
        return {oid for oid in wanted if oid.encode("ascii") not in store}


def copy_objects(src_path: Path, dst_path: Path, oids: Iterable[str]) -> int:
    """Copy into ``dst_path`` the objects reachable from ``oids`` that it lacks.

    Returns the number of objects written into ``dst_path`` (0 when it already held every OID:
    then no subprocess runs).  Raises :class:`AbsentObjectError` when ``src_path`` lacks any of
    the OIDs (nothing is copied then) and :class:`GitCommandError` if git fails.
    """
    wanted = normalise_oids(oids)
    absent = missing_oids(src_path, wanted)
    if absent:
        raise AbsentObjectError(src_path, absent)
    lacking = missing_oids(dst_path, wanted)
    if not lacking:
        return 0
    need = [oid for oid in wanted if oid in lacking]
    before = _object_inventory(Path(dst_path) / "objects")
    args = ["--git-dir", str(dst_path)]
    for item in _COPY_CONFIG:
        args += ["-c", item]
    args += ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules"]
    run_git([*args, str(Path(src_path).resolve()), *need])
    added = _object_inventory(Path(dst_path) / "objects") - before
    count = sum(_count_of(entry) for entry in added)
    logger.debug("copied %d objects for %d OIDs from %s to %s", count, len(need), src_path, dst_path)
    return count


def _object_inventory(objects_dir: Path) -> set[tuple[str, Path]]:
    """Loose object files and pack indexes, so a before/after difference shows what arrived."""
    found: set[tuple[str, Path]] = set()
    with os.scandir(objects_dir) as entries:
        for entry in entries:
            if entry.is_dir() and _LOOSE_DIR.fullmatch(entry.name):
                found.update(("loose", Path(f.path)) for f in os.scandir(entry.path))
    pack_dir = objects_dir / "pack"
    if pack_dir.is_dir():
        found.update(("idx", p) for p in pack_dir.glob("pack-*.idx"))
    return found


def _count_of(entry: tuple[str, Path]) -> int:
    kind, path = entry
    return 1 if kind == "loose" else pack_index_object_count(path)


def pack_index_object_count(idx_path: Path) -> int:
    """Number of objects a pack index describes (last fan-out entry; index v1 or v2)."""
    with open(idx_path, "rb") as f:
        header = f.read(8)
        offset = 8 if header[:4] == b"\xfftOc" else 0
        f.seek(offset + 255 * 4)
        return int.from_bytes(f.read(4), "big")
