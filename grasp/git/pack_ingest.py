"""Turning a received pack into objects of a repository: all or nothing, off the hub.

The pack arrives into a :class:`PackSpool` (memory, then an anonymous temporary file in the
repository's objects directory, so nothing is left behind if the process dies).  Only when the
transfer succeeded does :func:`ingest_pack` index it: a big pack into a private *staging*
directory (``objects/incoming-grasp-*``), a small one in memory and then into temporary files
of ``objects/pack`` (:data:`TEMP_PREFIX`, no pack suffix, as git's ``tmp_pack_*``). The thin
pack is completed against the repository's objects, but nothing the repository reads is
written yet.  The finished pack and its index are then renamed to ``objects/pack/pack-*``
(pack first: git ignores a pack until its index exists), by the waiting greenlet, which
cannot be interrupted between the renames because they do not yield.

Two indexers, chosen by the pack's size (:func:`indexes_in_process`):

* **big packs: ``git index-pack --stdin --fix-thin``**, a subprocess.  Indexing the 3.5 MiB,
  8,000-object pack of the benchmark takes 0.08 s with ``git index-pack`` and 0.44 s with
  dulwich (which also re-reads every object to validate it), and as a subprocess it neither
  holds the hub nor needs a worker thread that a deadline could not stop.  If the deadline (or
  a kill) interrupts the greenlet while ``index-pack`` runs, the process is killed and the
  staging directory removed: the repository is exactly as before (S7.2).
* **small packs: dulwich, in this process** (:func:`_index_here`).  A sync usually brings a
  few commits: the 15-object pack of a 5-commit fetch cost 7.8 ms wall, 2.2 ms of the relay's
  CPU and 3.1 ms of the child's through ``git index-pack`` (the process start is most of it,
  the git CLI pays it too); in-process it is well under a millisecond (P6, issue 16).  The
  bounds (:data:`SMALL_PACK_MAX_OBJECTS`, :data:`SMALL_PACK_MAX_BYTES`) keep the time on the
  hub short (S7.4) and are git's own line between "few" and "many" objects: a ``git fetch``
  of fewer than ``fetch.unpackLimit`` (100) objects writes them as loose objects without
  ``fsync`` (``core.fsync``'s default leaves loose objects out), so a small pack is written
  here without ``fsync`` too: the same durability git gives the same fetch, and a blocking
  ``fsync`` would hold the hub 2 ms per file on this disk.  Every object's id is computed
  from its contents (deltas resolved, thin bases read from the repository), as ``index-pack``
  does, and the pack's checksum is checked before anything is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import struct
import tempfile
from pathlib import Path

from dulwich.object_store import DiskObjectStore
from dulwich.objects import RawObjectID

from grasp.git import offhub
from grasp.git.errors import GitCommandError
from grasp.git.offhub import run_git
from grasp.git.small_pack import IndexedPack, PackTooBig, index_small_pack
from grasp.git.workdirs import make_workdir, owner_tag

logger = logging.getLogger(__name__)

STAGING_PREFIX = "incoming-grasp-"
#: Temporary names of a small pack and its index in ``objects/pack``: ``<prefix><owner>-<random>``
#: + ``_pack``/``_idx``. git's ``tmp_`` (``git prune`` removes them), the owner as in workdirs.py.
TEMP_PREFIX = "tmp_grasp_"
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_SPOOL_IN_MEMORY = 8 << 20
_INDEX_PACK_OUTPUT = re.compile(rb"^(?:pack|keep)\t([0-9a-f]{40})\n?$")

#: Packs of at most this many objects are indexed in this process (git's fetch.unpackLimit
#: default minus one: git's own "few objects" line, see the module docstring) ...
SMALL_PACK_MAX_OBJECTS = 99
#: ... of at most this many bytes ...
SMALL_PACK_MAX_BYTES = 1 << 20
#: ... and whose objects (delta results included) inflate to at most this many bytes; past
#: it the pack goes to ``git index-pack`` after all.  These bounds keep the hub stall small
#: (S7.4): the worst cases measured here took 11 ms (one object of 2 MiB of zeros, a 2 KiB
#: pack) and 3.4 ms (a 1 MiB incompressible blob); 8 MiB of zeros took 61 ms.
SMALL_PACK_MAX_INFLATED = 2 << 20
_PACK_HEADER = struct.Struct(">4sII")  # "PACK", version, number of objects


class PackSpool:
    """Where pack bytes go while they arrive (the ``pack_data`` sink of dulwich's fetch_pack).

    Given the target ``repo``, a pack that is known to go to ``git index-pack`` (its header
    counts more objects than :data:`SMALL_PACK_MAX_OBJECTS`, or it passed
    :data:`SMALL_PACK_MAX_BYTES`) is streamed into a running ``index-pack --stdin`` as it
    arrives, as git's fetch-pack does, instead of being spooled whole and indexed after the
    last byte: index-pack's inflating and hashing overlap the transfer, and only the delta
    resolution is left after it (P5, issue 16).  index-pack writes into a private staging
    directory only, so the repository is untouched until :func:`ingest_pack` renames (S7.2).
    Small packs (and every pack when no ``repo`` is given) are spooled as before.
    """

    def __init__(self, directory: Path, repo: Path | None = None) -> None:
        self.size = 0
        self._head = b""  # the first 12 bytes: the pack header (:meth:`header`)
        self._repo = repo
        self.stream: IndexPackStream | None = None
        #: set when starting index-pack failed here (git missing, ...): not the server's fault
        self.local_error: OSError | None = None
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by this object
            max_size=_SPOOL_IN_MEMORY, mode="w+b", dir=str(directory)
        )

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if len(self._head) < _PACK_HEADER.size:
            self._head = (self._head + data)[: _PACK_HEADER.size]
        if self.stream is not None:
            self.stream.write(data)
            return len(data)
        self._file.write(data)
        if self._repo is not None and self._goes_to_git():
            self._start_stream(self._repo)
        return len(data)

    def _goes_to_git(self) -> bool:
        return self.header() is not None and not indexes_in_process(self)

    def _start_stream(self, repo: Path) -> None:
        try:
            stream = self.stream = IndexPackStream(repo)
        except OSError as exc:
            self.local_error = exc
            raise
        stream.write(self.read_all())  # what came before the header decided (<= 1 MiB)
        self._file.close()

    def header(self) -> tuple[bytes, int, int] | None:
        """(signature, version, number of objects) from the first 12 bytes, if that many came."""
        if len(self._head) < _PACK_HEADER.size:
            return None
        signature, version, count = _PACK_HEADER.unpack(self._head)
        return signature, version, count

    def read_all(self) -> bytes:
        """Everything spooled so far (meant for small spools: it is one bytes object)."""
        self._file.seek(0)
        return self._file.read()

    def as_stdin(self) -> tempfile.SpooledTemporaryFile[bytes]:
        """The spool as a real file at offset 0 (rolled over to disk if it was in memory)."""
        self._file.rollover()
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        """Drop the pack: a running index-pack is killed and its staging directory removed."""
        self._file.close()
        if self.stream is not None:
            self.stream.abort()


class IndexPackStream:
    """``git index-pack --stdin --fix-thin`` reading a pack while it arrives, into a staging
    directory of its own.  A child that stops reading early (it rejected the data) makes
    :meth:`write` raise its :class:`GitCommandError` at once, so a bad pack ends the transfer."""

    def __init__(self, repo: Path) -> None:
        self.staging = make_workdir(STAGING_PREFIX, Path(repo) / "objects")
        self._args = ["git", *index_pack_command(repo, self.staging / "incoming.pack")]
        try:
            self._proc = offhub.SpawnedProcess(self._args, stdin_pipe=True)
        except BaseException:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise

    def write(self, data: bytes) -> None:
        try:
            self._proc.write(data)
        except BrokenPipeError:
            self.finish()  # raises the child's error (or, exited fine, the trailing data's)
            raise ValueError("data after the end of the pack") from None

    def finish(self) -> str:
        """End of input; the staged pack's name once index-pack has finished."""
        try:
            out, err = self._proc.communicate()
        except BaseException:
            self.abort()
            raise
        if self._proc.returncode:
            raise GitCommandError(self._args, self._proc.returncode, err.decode("utf-8", "replace"))
        return _index_pack_digest(out)

    def abort(self) -> None:
        """Kill and reap the child (if still running), remove the staging directory."""
        if self._proc.returncode is None:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self.staging, ignore_errors=True)


def index_pack_command(repo_path: Path, output: Path) -> list[str]:
    """The ``git`` arguments that index a thin pack from stdin into ``output`` (+ ``.idx``)."""
    return ["--git-dir", str(repo_path), "index-pack", "--stdin", "--fix-thin", str(output)]


def indexes_in_process(spool: PackSpool) -> bool:
    """Is the spooled pack small enough, and well-formed enough at its start, to be indexed
    here?  Anything else (big, or a header git should judge) goes to ``git index-pack``."""
    header = spool.header()
    if header is None or spool.size > SMALL_PACK_MAX_BYTES:
        return False
    signature, version, count = header
    return signature == b"PACK" and version in (2, 3) and count <= SMALL_PACK_MAX_OBJECTS


def ingest_pack(repo_path: Path, spool: PackSpool) -> str | None:
    """Index the spooled (possibly thin) pack and install it in ``repo_path``.

    Returns the installed pack's name, or None when the identical pack was already installed
    (or it held no object).  Takes ownership of ``spool``.  Raises :class:`GitCommandError`
    for a pack git rejects, ``ValueError`` (or dulwich's errors, all server faults) for a small
    pack that is malformed; the repository is then unchanged.
    """
    objects_dir = Path(repo_path) / "objects"
    if spool.stream is not None:  # index-pack has read the pack already: let it finish
        staging = spool.stream.staging
        try:
            return _move_into_place(staging, objects_dir / "pack", spool.stream.finish())
        finally:
            spool.close()
    if indexes_in_process(spool):
        try:
            return _install_small(objects_dir, spool)
        except PackTooBig:
            logger.debug("a small pack inflating beyond the bound goes to git index-pack")
        except BaseException:
            spool.close()
            raise
    staging = make_workdir(STAGING_PREFIX, objects_dir)  # owner in the name (workdirs.py)
    try:
        return _move_into_place(
            staging, objects_dir / "pack", _index_with_git(repo_path, spool, staging)
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        spool.close()


def _install_small(objects_dir: Path, spool: PackSpool) -> str | None:
    """Index the small spooled pack here and install it; its name (None: nothing new).

    No staging directory: the pack and its index are written straight into ``objects/pack``
    under temporary names (:data:`TEMP_PREFIX`, no ``.pack``/``.idx`` suffix, so neither git
    nor dulwich nor :mod:`grasp.git.objects` takes them for a pack) and renamed, pack first,
    as git's own ``tmp_pack_*``/``tmp_idx_*``. The staging directory's ``mkdtemp`` and
    ``rmtree`` were 0.35 ms of the 0.8 ms of file work per ingest (P1, issue 16). A process
    killed between writing and renaming leaves temporary files only, which the next start
    removes (:func:`grasp.git.repos.remove_interrupted_work`), and so does ``git prune``
    (every ``objects/pack/tmp_*`` older than its expiry).
    """
    indexed = _index_here(objects_dir, spool.read_all())
    spool.close()
    if indexed is None:
        return None
    pack_dir = objects_dir / "pack"
    name = f"pack-{indexed.digest}"
    if os.path.exists(pack_dir / f"{name}.idx"):
        return None  # the very same pack (same objects) is already installed
    stem = f"{TEMP_PREFIX}{owner_tag()}-{secrets.token_hex(4)}"
    temp_pack, temp_idx = pack_dir / f"{stem}_pack", pack_dir / f"{stem}_idx"
    try:
        _write_new(temp_pack, indexed.pack, pack_dir)
        _write_new(temp_idx, indexed.index, pack_dir)
        os.replace(temp_pack, pack_dir / f"{name}.pack")
        os.replace(temp_idx, pack_dir / f"{name}.idx")  # the index last: now git sees it
    except BaseException:
        for temp in (temp_pack, temp_idx):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        raise
    logger.debug("installed %s/%s.pack", pack_dir, name)
    return name


def _write_new(path: Path, data: bytes, pack_dir: Path) -> None:
    """Write ``data`` to the new file ``path``; ``objects/pack`` is made on the first pack (a
    new empty repository has none: grasp.git.repos)."""
    try:
        fd = os.open(path, _NEW_FILE, 0o644)
    except FileNotFoundError:
        pack_dir.mkdir(exist_ok=True)
        fd = os.open(path, _NEW_FILE, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _index_with_git(repo_path: Path, spool: PackSpool, staging: Path) -> str:
    out = run_git(index_pack_command(repo_path, staging / "incoming.pack"), stdin=spool.as_stdin())
    return _index_pack_digest(out)


def _index_pack_digest(out: bytes) -> str:
    match = _INDEX_PACK_OUTPUT.match(out)
    if match is None:
        raise ValueError(f"unexpected git index-pack output {out[:200]!r}")
    return match[1].decode("ascii")


def _index_here(objects_dir: Path, data: bytes) -> IndexedPack | None:
    """The small pack ``data`` indexed in memory (thin packs completed from the repository's
    objects); None for a pack without objects.  Raises :class:`PackTooBig` for a pack that
    inflates beyond the bound: git gets it then."""
    store: list[DiskObjectStore] = []

    def base_of(oid: bytes) -> tuple[int, bytes]:  # only thin packs need the repository
        if not store:
            store.append(DiskObjectStore(str(objects_dir)))
        return store[0].get_raw(RawObjectID(oid))

    try:
        indexed = index_small_pack(data, base_of, max_inflated=SMALL_PACK_MAX_INFLATED)
    finally:
        for opened in store:
            opened.close()
    return indexed if indexed.objects else None


def _move_into_place(staging: Path, pack_dir: Path, digest: str) -> str | None:
    """Rename the staged files to ``pack-<digest>.*``, the index last."""
    name = f"pack-{digest}"
    if (pack_dir / f"{name}.idx").exists():
        return None  # the very same pack (same objects) is already installed
    pack_dir.mkdir(exist_ok=True)  # a new empty repository has none yet (grasp.git.repos)
    staged = sorted(
        staging.glob("incoming.*"), key=lambda p: (p.suffix == ".idx", p.suffix != ".pack")
    )
    for path in staged:
        os.replace(path, pack_dir / f"{name}{path.suffix}")
    logger.debug("installed %s/%s.pack", pack_dir, name)
    return name
