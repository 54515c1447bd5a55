"""Pruning what only expired placeholders reached (S14.3), in work proportional to them.

``git prune`` and ``git gc`` walk the whole repository to find what is unreachable; a stranger
can make a placeholder expire every few minutes, so the cleanup of one must cost what *it*
brought, not what the repository holds. Here the set is computed exactly::

    git rev-list --objects <expired tips> --not --all <keep>

— the objects reachable from the expired placeholders' commits and from nothing else: no ref
(the placeholder refs were deleted first) and no object a held event still waits for
(``keep``: fetched objects stay unreferenced until their release, S7.3). git walks from the
tips down to the first object a ref or a kept object reaches, so a placeholder on top of a big
history costs only its own objects. Loose objects of that set are deleted; a pack is deleted
when every object in it is in the set or also stored elsewhere (a push of fewer than
``receive.unpackLimit`` = 100 objects arrives loose, a bigger one as a pack of its objects plus,
for a thin pack, copies of the bases it was made against). Any other pack is left alone.

Callers serialise this with everything that writes the repository (the Releaser runs it, and
skips a repository while a push to it is in flight), so no ref can start pointing into the set
while it is deleted. ``git rev-list`` runs as a subprocess (off the hub, S7.4); the Python part
touches at most the set's own files and the indexes of packs no bigger than the set.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dulwich.object_format import SHA1
from dulwich.objects import ObjectID
from dulwich.pack import PackIndex, load_pack_index

from grasp.git.objects import missing_oids, normalise_oids
from grasp.git.offhub import run_git

logger = logging.getLogger(__name__)

__all__ = ["PruneResult", "prune_unreachable"]

_PACK_SUFFIXES = (".pack", ".rev", ".bitmap", ".mtimes", ".promisor")


@dataclass(frozen=True)
class PruneResult:
    """What :func:`prune_unreachable` deleted: loose objects, whole packs, and their bytes."""

    objects: int = 0
    loose: int = 0
    packs: int = 0
    bytes: int = 0


def prune_unreachable(
    repo_path: Path, tips: Iterable[str], keep: Iterable[str] = ()
) -> PruneResult:
    """Delete the objects reachable from ``tips`` and from no ref and no ``keep`` object."""
    repo_path = Path(repo_path)
    wanted = normalise_oids(tips)
    gone = missing_oids(repo_path, wanted)
    present = [oid for oid in wanted if oid not in gone]
    if not present:
        return PruneResult()
    kept = normalise_oids(_sha1_only(keep))
    absent = missing_oids(repo_path, kept)
    kept = [oid for oid in kept if oid not in absent]
    out = run_git(
        [
            "--git-dir",
            str(repo_path),
            "rev-list",
            "--objects",
            "--no-object-names",
            "--missing=allow-any",
            *present,
            "--not",
            "--all",
            *kept,
        ]
    )
    doomed = set(out.decode("ascii").split())
    loose, loose_bytes = _delete_loose(repo_path / "objects", doomed)
    packs, pack_bytes = _delete_packs(repo_path / "objects" / "pack", doomed)
    result = PruneResult(len(doomed), loose, packs, loose_bytes + pack_bytes)
    logger.info(
        "pruned %d objects only expired placeholders reached from %s: %d loose, %d packs, %d bytes",
        result.objects,
        repo_path,
        result.loose,
        result.packs,
        result.bytes,
    )
    return result


def _sha1_only(oids: Iterable[str]) -> list[str]:
    return [oid for oid in oids if len(oid) == 40]


def _delete_loose(objects: Path, doomed: set[str]) -> tuple[int, int]:
    count = size = 0
    for oid in doomed:
        path = objects / oid[:2] / oid[2:]
        try:
            size += path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        count += 1
        try:
            path.parent.rmdir()  # an emptied fan-out directory goes too: as it was before
        except OSError:
            pass
    return count, size


def _delete_packs(pack_dir: Path, doomed: set[str]) -> tuple[int, int]:
    """Delete each pack whose objects are all doomed or also stored elsewhere (a thin pack's
    appended bases are copies of objects the repository already had). Only packs of at most
    twice the doomed set's size are looked at: a placeholder's pack is its objects plus at
    most one base per delta."""
    if not doomed or not pack_dir.is_dir():
        return 0, 0
    if (pack_dir / "multi-pack-index").exists():
        logger.warning("%s has a multi-pack-index; its packs are not pruned", pack_dir)
        return 0, 0
    indexes = {path: load_pack_index(str(path), SHA1) for path in sorted(pack_dir.glob("*.idx"))}
    count = size = 0
    try:
        for idx_path, index in list(indexes.items()):
            base = idx_path.with_suffix("")
            if base.with_suffix(".keep").exists() or len(index) > 2 * len(doomed):
                continue
            others = [other for path, other in indexes.items() if path != idx_path]
            if not all(
                sha.decode("ascii") in doomed or _elsewhere(sha, pack_dir.parent, others)
                for sha in index
            ):
                continue
            size += sum(_size(base.with_suffix(s)) for s in (".idx", *_PACK_SUFFIXES))
            index.close()
            del indexes[idx_path]
            idx_path.unlink()  # first: a new reader no longer finds the pack
            for suffix in _PACK_SUFFIXES:
                base.with_suffix(suffix).unlink(missing_ok=True)
            count += 1
    finally:
        for index in indexes.values():
            index.close()
    return count, size


def _elsewhere(sha: bytes, objects: Path, others: list[PackIndex]) -> bool:
    """Is this object (hex) also stored loose or in another pack?"""
    text = sha.decode("ascii")
    if (objects / text[:2] / text[2:]).is_file():
        return True
    for index in others:
        try:
            index.object_offset(ObjectID(sha))
        except KeyError:
            continue
        return True
    return False


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
