"""The local side of a fetch's negotiation: the "haves" a target repository can offer.

Negotiation sends haves from every ref of the target that points (through tags) at a commit
(``grasp.git.fetch``'s module docstring, S7.3). A repository without any ref (a new
repository's first fetch, as in P1's benchmark) has none, and :func:`has_no_haves` says so
from one scan of ``refs/`` without opening a dulwich ``Repo``.
"""

from __future__ import annotations

import os
from pathlib import Path

from dulwich.object_store import peel_sha
from dulwich.objects import ObjectID
from dulwich.repo import Repo

__all__ = ["has_no_haves", "have_heads", "no_parents"]


def has_no_haves(repo_path: Path) -> bool:
    """No ref at all (loose or packed) and no ``shallow`` file: :func:`have_heads` would be
    empty and the graph walker would have nothing to say. Any doubt answers False."""
    if os.path.lexists(repo_path / "packed-refs") or os.path.lexists(repo_path / "shallow"):
        return False
    pending = [os.path.join(repo_path, "refs")]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if not entry.is_dir(follow_symlinks=False):
                        return False
                    pending.append(entry.path)
        except OSError:
            return False
    return True


def no_parents(sha: ObjectID) -> list[ObjectID]:
    """The graph walker of a repository without haves is never asked for parents."""
    raise KeyError(sha)


def have_heads(repo: Repo) -> list[ObjectID]:
    """Every commit a ref of ``repo`` points at, directly or through tags: the negotiation haves."""
    heads: set[ObjectID] = set()
    store = repo.object_store
    for sha in repo.refs.as_dict().values():
        if sha not in store:
            continue
        try:
            _tag, peeled = peel_sha(store, sha)
        except KeyError:
            continue
        if peeled.type_name == b"commit":
            heads.add(peeled.id)
    return sorted(heads)
