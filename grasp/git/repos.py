"""Where repositories live on disk (S11, S10.4): ``<data>/repos/<npub>/<identifier>.git``.

The identifier comes from a Nostr event (``d`` tag), so it is validated before it becomes a path
component: an identifier such as ``..`` or ``a/b`` would otherwise address another directory.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import shutil
from pathlib import Path

from grasp.git.workdirs import is_abandoned, owner_tag

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
    if os.path.exists(path):
        return path
    parent = os.path.dirname(path)
    tmp = new_init_dir(parent)  # owner in the name (grasp/git/workdirs.py)
    try:
        lay_out_empty_repo(tmp, os.path.join(os.path.dirname(parent), TEMPLATE_NAME))
        os.rename(tmp, path)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.exists(path):
            raise
        # someone else created it first; theirs is as good as ours
    else:
        logger.info("created repository %s", path)
    return path


def new_init_dir(parent: str | Path) -> str:
    """Make and return a new private directory ``<parent>/.init-<pid>@<host>-<n>``, creating
    ``parent`` when it is missing (a new owner's first repository).

    The owner tag is what :func:`remove_interrupted_work` judges; the suffix is a per-process
    token and a counter instead of ``tempfile.mkdtemp``'s random name and its absolute-path
    work, and ``parent`` is only made when the first ``mkdir`` says it is missing (P7: the
    repository's own three inodes are the cost worth paying, not the bookkeeping around them).
    """
    for _ in range(100):  # a name is only taken by a leftover of a pid now reused: move on
        tmp = os.path.join(parent, f"{INIT_PREFIX}{_name_stem()}{next(_counter)}")
        try:
            os.mkdir(tmp)
            return tmp
        except FileNotFoundError:
            os.makedirs(parent, exist_ok=True)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free {INIT_PREFIX} name in {parent}")


_counter = itertools.count()
_stem: tuple[int, str] = (0, "")


def _name_stem() -> str:
    """``<pid>@<host>-<token>`` of this process (recomputed after a fork)."""
    global _stem
    pid = os.getpid()
    if _stem[0] != pid:
        _stem = (pid, f"{owner_tag()}-{secrets.token_hex(4)}.")
    return _stem[1]


# What an empty bare repository needs and nothing more (P7, issue 16): git recognises a git
# directory by HEAD, objects/ and refs/; objects/pack/ is created when the first pack arrives
# (grasp.git.pack_ingest), loose refs' directories on their first write (git and dulwich alike).
# dulwich's ``Repo.init_bare`` also wrote description, info/exclude, hooks/, branches/,
# objects/info/, objects/pack/, refs/heads/ and refs/tags/, each file through a GitFile that
# fsyncs on close: 42-47 % of held-event intake went there, and 52 KiB of disk per repository.
_EMPTY_REPO_DIRS = ("objects", "refs")
_EMPTY_REPO_FILES = {
    "HEAD": b"ref: refs/heads/master\n",  # what dulwich's init_bare wrote: same HEAD as before
    "config": b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
}
TEMPLATE_NAME = ".empty-repo-template"


def lay_out_empty_repo(root: str | Path, template: str | Path) -> None:
    """Lay out an empty bare repository in the new private directory ``root``.

    HEAD and config are hard links to the files of a prepared ``template`` next to the
    repositories' parent directories (one ``link`` instead of open/write/close, no data block
    of their own). Sharing an inode is safe because git and dulwich never rewrite these files
    in place: every update writes ``<name>.lock`` and renames it over the link. When a link
    cannot be made (the template is being replaced, another file system, EMLINK after ~65,000
    links on ext4) the template is prepared afresh, and the files written if that fails too.

    No fsync: the directory is renamed to its final path only once complete, and an empty
    repository holds nothing the database does not (its refs and objects come from released
    events and the next sync, S1.1); on ext4's default data=ordered a new file's bytes reach
    the disk before its directory entry does, so a power cut leaves it whole or absent.
    """
    for name in _EMPTY_REPO_DIRS:
        os.mkdir(os.path.join(root, name))
    if not _link_files(template, root):
        _renew_template(template)
        if not _link_files(template, root):
            _write_files(root)


def _link_files(template: str | Path, root: str | Path) -> bool:
    """Hard-link the template's files into ``root``; False (nothing left half) if it fails."""
    linked = []
    try:
        for name in _EMPTY_REPO_FILES:
            os.link(os.path.join(template, name), os.path.join(root, name))
            linked.append(name)
    except OSError:
        for name in linked:
            os.unlink(os.path.join(root, name))
        return False
    return True


def _write_files(root: str | Path) -> None:
    for name, content in _EMPTY_REPO_FILES.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(content)


def _renew_template(template: str | Path) -> None:
    """Replace ``template`` by a fresh one (new inodes, link counts from 1); never raises."""
    fresh = None
    try:
        fresh = new_init_dir(os.path.dirname(template))
        _write_files(fresh)
        shutil.rmtree(template, ignore_errors=True)
        os.rename(fresh, template)
    except OSError as exc:  # another process renewed it at the same moment: theirs will do
        logger.debug("repository template %s not renewed: %s", template, exc)
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)


def remove_interrupted_work(data_dir: Path) -> list[Path]:
    """Remove what a killed process left half-done below ``<data>/repos``; run before serving.

    Three things can be orphaned by SIGKILL: a repository being initialised (``<npub>/.init-*``,
    see :func:`ensure_bare_repo`), a fetched pack being indexed
    (``<repo>/objects/incoming-grasp-*``) and a small pack's temporary files
    (``<repo>/objects/pack/tmp_grasp_*``, both in ``grasp.git.pack_ingest``). None is ever read,
    but each holds a full copy of a pack. Returns what was removed.

    Only abandoned ones (:func:`grasp.git.workdirs.is_abandoned`): in a cluster another live
    node may be initialising or indexing in the same data directory right now (S19.2).
    """
    from grasp.git.pack_ingest import STAGING_PREFIX, TEMP_PREFIX

    root = Path(data_dir) / "repos"
    prs = Path(data_dir) / "prs"  # GRASP-06 repositories and their shared empty one (S16.1)
    inits = [*root.glob(f"*/{INIT_PREFIX}*"), *root.glob(f"{INIT_PREFIX}*")]  # + the template's
    inits += prs.glob(f"{INIT_PREFIX}*")
    inits += prs.glob(f"*/{INIT_PREFIX}*")
    stagings = root.glob(f"*/*.git/objects/{STAGING_PREFIX}*")
    leftovers = [p for p in inits if is_abandoned(p, INIT_PREFIX)]
    leftovers += [p for p in stagings if is_abandoned(p, STAGING_PREFIX)]
    temp_packs = root.glob(f"*/*.git/objects/pack/{TEMP_PREFIX}*")
    leftovers += [p for p in temp_packs if is_abandoned(p, TEMP_PREFIX)]
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        logger.warning("removed %s, left behind by an interrupted process", path)
    return leftovers
