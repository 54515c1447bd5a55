"""Where repositories live on disk (S11, S10.4): ``<data>/repos/<npub>/<identifier>.git``.

The identifier comes from a Nostr event (``d`` tag), so it is validated before it becomes a path
component: an identifier such as ``..`` or ``a/b`` would otherwise address another directory.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from dulwich.repo import Repo

from grasp.git.workdirs import is_abandoned, make_workdir

logger = logging.getLogger(__name__)

INIT_PREFIX = ".init-"
_NPUB = re.compile(r"npub1[02-9ac-hj-np-z]{58}")
_MAX_NAME_BYTES = 255


def validate_identifier(identifier: str) -> str:
    """Return ``identifier`` if it can name a repository, else raise ValueError (S10.4).

    Refused: empty, ``.``, ``..``, anything containing ``/``, ``\\`` or NUL, and names too long
    for a file name once ``.git`` is appended.
    """
    if not isinstance(identifier, str):
        raise ValueError(f"identifier must be a string, not {type(identifier).__name__}")
    if identifier in ("", ".", ".."):
        raise ValueError(f"invalid repository identifier {identifier!r}")
    for bad in ("/", "\\", "\0"):
        if bad in identifier:
            raise ValueError(f"invalid repository identifier {identifier!r}: contains {bad!r}")
    if len(identifier.encode("utf-8", "surrogatepass")) + len(".git") > _MAX_NAME_BYTES:
        raise ValueError(f"repository identifier too long ({len(identifier)} characters)")
    return identifier


def validate_npub(npub: str) -> str:
    """Return ``npub`` if it is a bech32 ``npub1...`` key (63 characters), else raise ValueError."""
    if not isinstance(npub, str) or not _NPUB.fullmatch(npub):
        raise ValueError(f"not an npub: {npub!r}")
    return npub


def repo_path_for(data_dir: Path, npub: str, identifier: str) -> Path:
    """The path of the bare repository of ``npub``'s ``identifier`` (it may not exist)."""
    return Path(data_dir) / "repos" / validate_npub(npub) / f"{validate_identifier(identifier)}.git"


def ensure_bare_repo(data_dir: Path, npub: str, identifier: str) -> Path:
    """Create the bare repository if it does not exist yet; return its path.

    Creation is atomic (initialised in a temporary directory, then renamed), so a concurrent
    caller or a crash never leaves a half-initialised repository at the final path.
    """
    return create_bare_repo(repo_path_for(data_dir, npub, identifier))


def create_bare_repo(path: Path) -> Path:
    """Create the bare repository ``path`` atomically unless it exists; return ``path``."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_workdir(INIT_PREFIX, path.parent)  # owner in the name (grasp/git/workdirs.py)
    try:
        Repo.init_bare(str(tmp)).close()
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.exists():
                raise
            # someone else created it first; theirs is as good as ours
        else:
            logger.info("created repository %s", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def remove_interrupted_work(data_dir: Path) -> list[Path]:
    """Remove what a killed process left half-done below ``<data>/repos``; run before serving.

    Two things can be orphaned by SIGKILL: a repository being initialised (``<npub>/.init-*``,
    see :func:`ensure_bare_repo`) and a fetched pack being indexed
    (``<repo>/objects/incoming-grasp-*``, see ``grasp.git.pack_ingest``). Neither is ever read,
    but a staging directory holds a full copy of a pack. Returns what was removed.

    Only abandoned ones (:func:`grasp.git.workdirs.is_abandoned`): in a cluster another live
    node may be initialising or indexing in the same data directory right now (S19.2).
    """
    from grasp.git.pack_ingest import STAGING_PREFIX

    root = Path(data_dir) / "repos"
    prs = Path(data_dir) / "prs"  # GRASP-06 repositories and their shared empty one (S16.1)
    inits = [*root.glob(f"*/{INIT_PREFIX}*"), *prs.glob(f"{INIT_PREFIX}*")]
    inits += prs.glob(f"*/{INIT_PREFIX}*")
    stagings = root.glob(f"*/*.git/objects/{STAGING_PREFIX}*")
    leftovers = [p for p in inits if is_abandoned(p, INIT_PREFIX)]
    leftovers += [p for p in stagings if is_abandoned(p, STAGING_PREFIX)]
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
        logger.warning("removed %s, left behind by an interrupted process", path)
    return leftovers
