"""A repository's branch and tag refs read once and written as one transaction (P1, issue 16).

``align_refs`` went through dulwich's ``DiskRefsContainer``: 1.1-1.4 ms of CPU per release
(micro-benchmark of a 5-commit release into a fresh repository, 200 runs), for one ref and
HEAD: dulwich re-validates each name, follows symbolic refs, re-reads every ref two or three
times and opens each file through ``GitFile``. Here the refs are read once (one scan of
``refs/heads`` and ``refs/tags``, one read of ``packed-refs``) and the changes are written the
way git's own ref transaction does (``refs/files-backend.c``):

1. every ref to change is locked (``<ref>.lock`` made with ``O_EXCL``, holding the new value);
2. under the locks, each ref's value is read again and compared with the value the changes
   were computed from (compare-and-swap: a push landing meanwhile is never overwritten unseen);
3. only when every check passed are the lock files renamed over the refs (deleted refs are
   unlinked); on any failure before that, every lock is removed and no ref has changed.

So a conflict leaves the repository exactly as it was, where one dulwich call per ref left the
refs before the conflicting one already written. No fsync, as before (``grasp.git.refs``):
a release's durable record is the released event in the database.

:func:`read_aligned` answers None for what this reader leaves to dulwich (a symbolic ref or an
unreadable file in those namespaces), and :func:`plan_is_simple` for the changes that need
``packed-refs`` rewritten or a directory turned into a file: ``align_refs`` takes dulwich's
path then, as before.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dulwich.refs import Ref, check_ref_format

from grasp.git.errors import RefConflictError

logger = logging.getLogger(__name__)

__all__ = [
    "STALE_LOCK_SECS",
    "RefRead",
    "commit_changes",
    "create_packed",
    "plan_is_simple",
    "read_aligned",
    "read_head_file",
    "set_head",
]

_NAMESPACES = ("refs/heads", "refs/tags")
_OID_LINE = re.compile(rb"[0-9a-f]{40}\n?")
#: What git writes, less "peeled": git then peels a tag itself when asked (no ``^`` lines).
_PACKED_HEADER = b"# pack-refs with: sorted \n"
#: A ref lock older than this is a dead writer's (ours and git's hold one for milliseconds).
STALE_LOCK_SECS = 600.0
_LOCK_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class RefRead:
    """The ``refs/heads/*`` and ``refs/tags/*`` of a repository: loose ones take precedence
    over ``packed``, as for git; ``refs`` holds both. ``packed_file``: a ``packed-refs`` file
    exists (it may hold other namespaces only)."""

    refs: dict[str, str]
    packed: dict[str, str]
    packed_file: bool = True


def read_aligned(repo: str) -> RefRead | None:
    """Every branch and tag with its OID; None when one of them is not plain (a symbolic ref,
    a file that is no OID, a ``packed-refs`` line this parser does not know)."""
    packed = _read_packed(repo)
    if packed is None:
        return None
    packed_file = bool(packed) or os.path.lexists(os.path.join(repo, "packed-refs"))
    refs = dict(packed)
    for namespace in _NAMESPACES:
        for name in _loose_names(repo, namespace):
            value = _read_loose(repo, name)
            if value is None:
                return None
            refs[name] = value
    return RefRead(refs, packed, packed_file)


def plan_is_simple(
    read: RefRead, deleted: Iterable[str], written: Iterable[str], wanted: Mapping[str, str]
) -> bool:
    """Can :func:`commit_changes` make these changes?  Not when a deleted ref is packed (that
    rewrites ``packed-refs``) or when a written ref's name is also a directory's or a file's
    (``refs/heads/a`` and ``refs/heads/a/b``): dulwich's path handles those, one ref at a time."""
    if any(name in read.packed for name in deleted):
        return False
    names = set(read.refs) | set(wanted)
    for name in written:
        if any(other.startswith(name + "/") for other in names):
            return False
        parent = name.rpartition("/")[0]
        while parent not in ("refs/heads", "refs/tags", "refs", ""):
            if parent in names:
                return False
            parent = parent.rpartition("/")[0]
    return True


def commit_changes(
    repo: str, old: Mapping[str, str], new: Mapping[str, str], deleted: Iterable[str]
) -> None:
    """Apply the changes as one transaction (module docstring): ``new`` maps each created or
    updated ref to its value, ``old`` each updated or deleted ref to the value it must still
    have (a created ref must still be absent). Raises :class:`RefConflictError` (nothing
    changed) when a ref is locked by another writer or moved since it was read."""
    locks: list[str] = []
    try:
        for name in (*deleted, *new):
            locks.append(_lock(repo, name, new.get(name)))
        for name in (*deleted, *new):
            if _current(repo, name) != old.get(name):
                raise RefConflictError(f"{name} changed while it was being aligned")
    except BaseException:
        for lock in locks:
            _unlink_quietly(lock)
        raise
    for name in deleted:
        _unlink_quietly(_path(repo, name))
        _unlink_quietly(_path(repo, name) + ".lock")
        _remove_empty_parents(repo, name)
    for name in new:
        path = _path(repo, name)
        os.replace(path + ".lock", path)


def create_packed(repo: str, new: Mapping[str, str]) -> bool:
    """Write the refs ``new`` of a repository that has none (no branch or tag, no
    ``packed-refs``: a new repository's first release) as a new ``packed-refs`` file, one
    lock-and-rename for all of them, as ``git clone`` writes its refs. Loose files would each
    be an inode, and ``refs/heads`` a directory to make first (the pool's repositories have
    none): ``mkdir`` was 4-6 % of the relay's samples in P6 (py-spy, issue 16). Later changes
    are loose files over it, as git's own. Raises :class:`RefConflictError` (nothing written)
    when a ref or ``packed-refs`` appeared meanwhile; False when ``packed-refs`` is locked
    (then the caller writes loose refs: a lock left by a crash must not block a release)."""
    path = os.path.join(repo, "packed-refs")
    lock = path + ".lock"
    lines = sorted((name.encode("utf-8"), oid.encode("ascii")) for name, oid in new.items())
    content = _PACKED_HEADER + b"".join(b"%s %s\n" % (oid, name) for name, oid in lines)
    try:
        _write_lock(lock, content, "packed-refs")
    except RefConflictError:
        return False
    try:
        if os.path.lexists(path):
            raise RefConflictError(f"packed-refs of {repo} appeared while it was being aligned")
        for name in new:
            if _current(repo, name) is not None:
                raise RefConflictError(f"{name} changed while it was being aligned")
    except BaseException:
        _unlink_quietly(lock)
        raise
    os.replace(lock, path)
    return True


def set_head(repo: str, target: str) -> None:
    """Point HEAD at the branch ``target`` (lock, write, rename; HEAD is no CAS in git either)."""
    path = os.path.join(repo, "HEAD")
    lock = path + ".lock"
    _write_lock(lock, f"ref: {target}\n".encode(), "HEAD")
    os.replace(lock, path)


def read_head_file(repo: str) -> bytes | None:
    """HEAD's content, its line end stripped; None when it cannot be read."""
    try:
        with open(os.path.join(repo, "HEAD"), "rb") as f:
            return f.readline().rstrip(b"\r\n")
    except OSError:
        return None


def _read_packed(repo: str) -> dict[str, str] | None:
    try:
        with open(os.path.join(repo, "packed-refs"), "rb") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return {}
    except OSError:
        return None
    packed: dict[str, str] = {}
    for line in lines:
        if not line or line.startswith((b"#", b"^")):
            continue  # the header, or the peeled value of the tag on the line before
        sha, _, name = line.partition(b" ")
        if not _OID_LINE.fullmatch(sha) or not name:
            return None
        text = name.decode("utf-8", "replace")
        if text.startswith(("refs/heads/", "refs/tags/")):
            packed[text] = sha.decode("ascii")
    return packed


def _loose_names(repo: str, namespace: str) -> list[str]:
    """Loose ref names below ``namespace``; lock files and malformed names skipped (as git)."""
    names: list[str] = []
    pending = [namespace]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(os.path.join(repo, directory)))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            name = f"{directory}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                pending.append(name)
            elif check_ref_format(Ref(name.encode("utf-8", "surrogateescape"))):
                names.append(name)
    return names


def _read_loose(repo: str, name: str) -> str | None:
    try:
        with open(_path(repo, name), "rb") as f:
            content = f.read(64)
    except OSError:
        return None
    return content[:40].decode("ascii") if _OID_LINE.fullmatch(content) else None


def _current(repo: str, name: str) -> str | None:
    """``name``'s value now, read under its lock: the loose file, else ``packed-refs``."""
    try:
        with open(_path(repo, name), "rb") as f:
            content = f.read(64)
    except FileNotFoundError:
        packed = _read_packed(repo)
        if packed is None:
            raise RefConflictError(f"packed-refs of {repo} became unreadable") from None
        return packed.get(name)
    if not _OID_LINE.fullmatch(content):
        raise RefConflictError(f"{name} became something other than an object id")
    return content[:40].decode("ascii")


def _lock(repo: str, name: str, value: str | None) -> str:
    """Take ``name``'s lock, holding ``value`` (empty for a deletion); the lock's path."""
    lock = _path(repo, name) + ".lock"
    content = b"" if value is None else value.encode("ascii") + b"\n"
    try:
        _write_lock(lock, content, name)
    except FileNotFoundError:  # a new ref's directory (refs/heads in a new repository)
        os.makedirs(os.path.dirname(lock), exist_ok=True)
        _write_lock(lock, content, name)
    return lock


def _write_lock(lock: str, content: bytes, name: str) -> None:
    try:
        fd = os.open(lock, _LOCK_FLAGS, 0o644)
    except FileExistsError:
        if not _take_over_stale(lock):
            raise RefConflictError(f"{name} is locked by another writer ({lock})") from None
        try:
            fd = os.open(lock, _LOCK_FLAGS, 0o644)
        except FileExistsError:  # another writer took it meanwhile: a live one
            raise RefConflictError(f"{name} is locked by another writer ({lock})") from None
    try:
        os.write(fd, content)
    except BaseException:
        os.close(fd)
        _unlink_quietly(lock)
        raise
    os.close(fd)


def _take_over_stale(lock: str) -> bool:
    """Remove ``lock`` when it is older than :data:`STALE_LOCK_SECS` (a writer killed between
    taking it and renaming it); True when it was removed (or is gone). Without this, one crash
    at that instant held the ref's every later release back until an operator deleted the file
    (git itself never breaks a ref lock). Every writer of these refs holds a lock for
    milliseconds: ours (above), and ``git receive-pack`` only while it updates the refs.

    The stat-then-unlink is not atomic: two takers of one stale lock could each remove the
    other's new one. Only our release writes these refs and takes locks over, once per
    identifier at a time (one Releaser per process; in a cluster, the advisory lock per
    identifier around each release pass, docs/scaling.rst), and git never takes one over."""
    try:
        age = time.time() - os.stat(lock).st_mtime
    except FileNotFoundError:
        return True
    if age < STALE_LOCK_SECS:
        return False
    _unlink_quietly(lock)
    logger.warning("removed %s, a lock %.0f s old: left by an interrupted writer", lock, age)
    return True


def _path(repo: str, name: str) -> str:
    return os.path.join(repo, name)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_empty_parents(repo: str, name: str) -> None:
    """Remove the directories a deleted ref leaves empty, below ``refs/heads``/``refs/tags``
    (as dulwich and git do: a later ``refs/heads/a`` needs ``refs/heads/a/`` gone)."""
    parent = name.rpartition("/")[0]
    while parent not in ("refs/heads", "refs/tags", "refs", ""):
        try:
            os.rmdir(_path(repo, parent))
        except OSError:
            return  # not empty, or gone: nothing more to clean
        parent = parent.rpartition("/")[0]
