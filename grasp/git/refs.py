"""Writing refs: aligning a repository with a state event (S8.2) and PR refs (S8.3).

Every function validates all of its input before writing anything, and never points a ref at
an object the repository does not hold (S8.4: dulwich would accept that silently and leave a
repository ``git fsck`` calls broken).  Writes are compare-and-swap against the values read a
moment before, so a concurrent writer (a push landing at the same time) surfaces as
:class:`RefConflictError` instead of being overwritten unseen.  No reflog is written (dulwich
would write one whenever given a message, ignoring ``core.logAllRefUpdates``, which is off for
bare repositories, and would then demand a committer identity the relay does not have).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dulwich.refs
from dulwich.file import GitFile
from dulwich.objects import Commit, ObjectID
from dulwich.refs import DiskRefsContainer, Ref, check_ref_format
from dulwich.repo import Repo

from grasp.git.errors import AbsentObjectError, RefConflictError
from grasp.git.objects import missing_oids, normalise_oids, packed_type
from grasp.git.ref_files import (
    RefRead,
    commit_changes,
    create_packed,
    plan_is_simple,
    read_aligned,
    read_head_file,
    set_head,
)

logger = logging.getLogger(__name__)


def _ref_file(filename, mode="rb", bufsize=-1, mask=0o644, fsync=True, shared_perm=None):  # noqa: ANN001, ANN201
    """dulwich's GitFile for ref files, without the fsync before each lock file's rename.

    Ref writes keep git's lock-and-rename protocol (a reader sees the old or the new value,
    never half of one), only not the per-file ``fsync``: it was 8-10 % of the relay's samples
    while syncing (P6, issue 16), one disk flush per ref and one for HEAD. A power cut may
    lose the last ref writes, as it may for git itself (it does not fsync loose refs unless
    ``core.fsync`` says so); what a release promises stays durable in the database, the
    released event that says what the refs are.
    """
    return GitFile(filename, mode, bufsize, mask, False, shared_perm)


dulwich.refs.GitFile = _ref_file  # every dulwich ref write in this process

ALIGNED_PREFIXES = ("refs/heads/", "refs/tags/")
NOSTR_PREFIX = "refs/nostr/"
_EVENT_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class AlignResult:
    """What ``align_refs`` changed; ref names sorted."""

    created: tuple[str, ...]
    updated: tuple[str, ...]
    deleted: tuple[str, ...]
    head_set: bool

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted or self.head_set)


def align_refs(repo_path: Path, refs: Mapping[str, str], head: str | None) -> AlignResult:
    """Make ``refs/heads/*`` and ``refs/tags/*`` equal ``refs`` exactly; point HEAD at ``head``.

    ``refs`` maps full ref names (only under ``refs/heads/`` or ``refs/tags/``) to OIDs, which
    must all be present (``AbsentObjectError`` otherwise; nothing is written).  Refs in those
    two namespaces that ``refs`` lacks are deleted; other namespaces (``refs/nostr/*``) are never
    touched.  ``head`` (e.g. ``"refs/heads/main"``) becomes HEAD's symbolic target when it names
    a branch of ``refs`` whose value is a commit; otherwise HEAD is left alone, as the original
    does (upstream-behaviour.md §4.4.3), and ``head_set`` is False.  ``head_set`` is True only
    when HEAD changed.
    """
    wanted = _validated_refs(refs)
    _require_present(repo_path, wanted.values())
    repo = str(repo_path)
    read = read_aligned(repo)  # one scan of refs/heads and refs/tags, one packed-refs read
    result = None if read is None else _align_directly(repo_path, read, wanted, head)
    if result is None:  # a symbolic ref, packed-refs to rewrite, a name both file and dir
        result = _align_with_dulwich(repo_path, wanted, head)
    if result.changed:
        logger.info(
            "aligned %s: %d created, %d updated, %d deleted, head_set=%s",
            repo_path,
            len(result.created),
            len(result.updated),
            len(result.deleted),
            result.head_set,
        )
    return result


def _align_directly(
    repo_path: Path, read: RefRead, wanted: Mapping[str, str], head: str | None
) -> AlignResult | None:
    """The changes as one ref transaction (:mod:`grasp.git.ref_files`); None when they are
    left to dulwich (:func:`~grasp.git.ref_files.plan_is_simple`): nothing is written then.
    1.2 ms of CPU per release through dulwich, 0.3 ms here (P1, issue 16, docs/performance)."""
    current = read.refs
    deleted, created, updated = _changes(current, wanted)
    if not plan_is_simple(read, deleted, [*created, *updated], wanted):
        return None
    repo = str(repo_path)
    first = not current and not read.packed_file  # a new repository's first refs
    if not (first and created and create_packed(repo, {n: wanted[n] for n in created})):
        commit_changes(
            repo,
            old={name: current[name] for name in (*deleted, *updated)},
            new={name: wanted[name] for name in (*created, *updated)},
            deleted=deleted,
        )
    head_set = _align_head(
        repo_path, wanted, head, read_head_file(repo), lambda target: set_head(repo, target)
    )
    return AlignResult(tuple(created), tuple(updated), tuple(deleted), head_set)


def _align_with_dulwich(
    repo_path: Path, wanted: Mapping[str, str], head: str | None
) -> AlignResult:
    """One dulwich compare-and-swap per ref (the path before :func:`_align_directly`)."""
    # The refs alone, not a whole dulwich Repo (config, hooks, object store): align_refs cost
    # 2.3 ms of CPU per release here, 0.45 ms of it opening the Repo (P6, issue 16).
    refs_store = DiskRefsContainer(str(repo_path))
    current = {
        name.decode(): sha.decode()
        for name, sha in refs_store.as_dict().items()
        if name.decode().startswith(ALIGNED_PREFIXES)
    }
    deleted, created, updated = _changes(current, wanted)
    # Deletions first: refs/heads/a must go before refs/heads/a/b can be created.
    for name in deleted:
        _cas(refs_store.remove_if_equals(_ref(name), _oid(current[name])), name)
    for name in created:
        _cas(refs_store.add_if_new(_ref(name), _oid(wanted[name])), name)
    for name in updated:
        _cas(
            refs_store.set_if_equals(_ref(name), _oid(current[name]), _oid(wanted[name])),
            name,
        )
    head_set = _align_head(
        repo_path,
        wanted,
        head,
        refs_store.read_ref(_ref("HEAD")),
        lambda target: refs_store.set_symbolic_ref(_ref("HEAD"), _ref(target)),
    )
    return AlignResult(tuple(created), tuple(updated), tuple(deleted), head_set)


def _changes(
    current: Mapping[str, str], wanted: Mapping[str, str]
) -> tuple[list[str], list[str], list[str]]:
    """(deleted, created, updated) ref names, each sorted."""
    deleted = sorted(set(current) - set(wanted))
    created = sorted(set(wanted) - set(current))
    updated = sorted(n for n in set(wanted) & set(current) if wanted[n] != current[n])
    return deleted, created, updated


def set_nostr_ref(repo_path: Path, event_id: str, oid: str) -> bool:
    """Point ``refs/nostr/<event_id>`` at ``oid`` (S8.3); True when the ref changed.

    ``event_id`` must be 64 lowercase hex digits; ``oid`` must be present in the repository.
    """
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise ValueError(f"not an event id (64 lowercase hex digits): {event_id!r}")
    (oid,) = normalise_oids([oid])
    _require_present(repo_path, [oid])
    name = NOSTR_PREFIX + event_id
    with Repo(str(repo_path)) as repo:
        try:
            old = repo.refs[_ref(name)]
        except KeyError:
            _cas(repo.refs.add_if_new(_ref(name), _oid(oid)), name)
        else:
            if old == oid.encode():
                return False
            _cas(repo.refs.set_if_equals(_ref(name), old, _oid(oid)), name)
    logger.info("set %s%s -> %s in %s", NOSTR_PREFIX, event_id, oid, repo_path)
    return True


def delete_nostr_ref(repo_path: Path, event_id: str, oid: str) -> bool:
    """Delete ``refs/nostr/<event_id>`` if it still points at ``oid``; True when it was deleted,
    False when absent or elsewhere (compare-and-swap like every write here: a ref that moved
    meanwhile is left alone). Used for an expired or out-voted placeholder (S14.3) and where a
    pushed commit lost to its signed event (GRASP-06, S16.1).
    """
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise ValueError(f"not an event id (64 lowercase hex digits): {event_id!r}")
    (oid,) = normalise_oids([oid])
    name = NOSTR_PREFIX + event_id
    with Repo(str(repo_path)) as repo:
        if repo.refs.read_ref(_ref(name)) != oid.encode():
            return False
        if not repo.refs.remove_if_equals(_ref(name), _oid(oid)):
            return False
    logger.info("deleted %s%s (was %s) in %s", NOSTR_PREFIX, event_id, oid, repo_path)
    return True


def list_refs(repo_path: Path) -> dict[str, str]:
    """Every ref under ``refs/`` (loose and packed) with its OID, sorted by name; no HEAD."""
    with Repo(str(repo_path)) as repo:
        refs = {
            name.decode(): sha.decode()
            for name, sha in repo.refs.as_dict().items()
            if name.startswith(b"refs/")
        }
    return dict(sorted(refs.items()))


def read_head(repo_path: Path) -> str | None:
    """HEAD's symbolic target (``"refs/heads/main"``), or None when HEAD is detached."""
    with Repo(str(repo_path)) as repo:
        value = repo.refs.read_ref(_ref("HEAD"))
    if value is not None and value.startswith(b"ref: "):
        return value[len(b"ref: ") :].strip().decode()
    return None


def _validated_refs(refs: Mapping[str, str]) -> dict[str, str]:
    bad = [
        name
        for name in refs
        if not isinstance(name, str)
        or not name.startswith(ALIGNED_PREFIXES)
        or not check_ref_format(_ref(name))
    ]
    if bad:
        raise ValueError(
            f"not a valid refs/heads/* or refs/tags/* name: {', '.join(map(repr, bad))}"
        )
    normalise_oids(refs.values())  # raises ValueError for a value that is not an OID
    return dict(refs)


def _require_present(repo_path: Path, oids: object) -> None:
    absent = missing_oids(repo_path, list(dict.fromkeys(oids)))  # type: ignore[call-overload]
    if absent:
        raise AbsentObjectError(repo_path, absent)


def _align_head(
    repo_path: Path,
    wanted: Mapping[str, str],
    head: str | None,
    current_head: bytes | None,
    point_head_at: Callable[[str], None],
) -> bool:
    if head is None:
        return False
    target = wanted.get(head)
    if not head.startswith("refs/heads/") or target is None:
        logger.warning("HEAD left alone: %r is not a branch of the state", head)
        return False
    if current_head == b"ref: " + head.encode():
        return False  # already there: the object need not be read (most releases)
    if not _is_commit(repo_path, target):
        logger.warning("HEAD left alone: %s points at %s, which is not a commit", head, target)
        return False
    point_head_at(head)
    return True


def _is_commit(repo_path: Path, oid: str) -> bool:
    """From the pack's object header when it is stored whole (no Repo to open), else dulwich."""
    kind = packed_type(repo_path, oid)
    if kind is not None:
        return kind == Commit.type_num
    with Repo(str(repo_path)) as repo:
        return isinstance(repo.object_store[_oid(oid)], Commit)


def _ref(name: str) -> Ref:
    """A ref name as dulwich types it (UTF-8 bytes)."""
    return Ref(name.encode("utf-8"))


def _oid(hex_oid: str) -> ObjectID:
    """A hex object id as dulwich types it."""
    return ObjectID(hex_oid.encode("ascii"))


def _cas(ok: bool, name: str) -> None:
    if not ok:
        raise RefConflictError(f"{name} changed while it was being aligned")
