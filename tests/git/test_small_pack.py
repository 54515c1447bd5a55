"""Small packs indexed in this process (issue 16, P6): the same objects and index as
``git index-pack``, thin packs completed from the repository, bad packs leaving the repository
exactly as before (S7.2), big packs still given to git.  Packs come from the real
``git pack-objects`` or through a real ``git http-backend``; the reference is the git CLI."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from grasp.git import FetchError, fetch_oids, offhub, pack_ingest, set_nostr_ref
from grasp.git.pack_ingest import PackSpool, ingest_pack
from grasp.git.small_pack import PackTooBig, index_small_pack
from tests.git.conftest import PRIVATE_OK, QUICK, BigRepo
from tests.support.gitrepo import (
    RepoBuilder,
    assert_fsck_clean,
    git,
    has_object,
    init_bare,
    objects_listing,
)
from tests.support.gitserver import GitServer

# 60 lines that change one at a time: git deltas each version against the previous one
_LINES = [
    f"line {n} of a file long enough for git to store its versions as deltas\n" for n in range(60)
]


def _version(n: int) -> str:
    lines = list(_LINES)
    lines[n % len(lines)] = f"changed in version {n}\n"
    return "".join(lines)


@pytest.fixture
def history(tmp_path: Path) -> tuple[RepoBuilder, list[str]]:
    """``src.git``: 6 commits of one file in 6 versions (deltas), plus one file per commit."""
    builder = RepoBuilder.create(tmp_path / "served" / "src.git")
    commits: list[str] = []
    for n in range(6):
        files = {"big.txt": _version(n), f"f{n}.txt": f"{n}\n"}
        parents = commits[-1:]
        commits.append(builder.commit(parents=parents, files=files, branch="main"))
    return builder, commits


def _pack(repo: Path, revs: str, *options: str) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", str(repo), "pack-objects", "--stdout", "--revs", *options],
        input=revs.encode(),
        capture_output=True,
        check=True,
    ).stdout


def _spool(directory: Path, data: bytes) -> PackSpool:
    spool = PackSpool(directory)
    spool.write(data)
    return spool


def _spawned(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argument lists of every git child started from now on."""
    started: list[list[str]] = []
    real = offhub.SpawnedProcess

    def recording(args: list[str], **kwargs: object) -> offhub.SpawnedProcess:
        started.append(args)
        return real(args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(offhub, "SpawnedProcess", recording)
    return started


def _index_packs(started: list[list[str]]) -> int:
    return sum("index-pack" in args for args in started)


@pytest.mark.parametrize("options", [(), ("--delta-base-offset",)], ids=["ref", "ofs"])
def test_small_pack_gets_the_index_git_index_pack_writes(
    history: tuple[RepoBuilder, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: tuple[str, ...],
):
    """REF_DELTA and OFS_DELTA packs alike: the installed pack is the received one and its
    .idx is byte for byte the one git index-pack makes of it; no git child runs."""
    builder, commits = history
    data = _pack(builder.path, "main\n", *options)
    target = init_bare(tmp_path / "target.git")
    started = _spawned(monkeypatch)
    name = ingest_pack(target, _spool(tmp_path, data))
    assert started == []
    assert name == f"pack-{data[-20:].hex()}", "named by its checksum, as git names it"
    pack_dir = target / "objects" / "pack"
    assert (pack_dir / f"{name}.pack").read_bytes() == data
    reference = tmp_path / "reference.pack"
    reference.write_bytes(data)
    git("index-pack", reference)
    assert (pack_dir / f"{name}.idx").read_bytes() == reference.with_suffix(".idx").read_bytes()
    assert all(has_object(target, c) for c in commits)
    assert_fsck_clean(target)
    assert not list((target / "objects").glob(f"{pack_ingest.STAGING_PREFIX}*"))
    assert sorted(p.name for p in pack_dir.iterdir()) == [f"{name}.idx", f"{name}.pack"], (
        "no temporary file is left in objects/pack"
    )


def test_thin_pack_is_completed_from_the_repository_objects(
    history: tuple[RepoBuilder, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A thin pack deltas against objects only the repository has (S7.3): they are read from
    it and appended (``--fix-thin``), so the new pack stands alone."""
    builder, commits = history
    target = init_bare(tmp_path / "target.git")
    assert ingest_pack(target, _spool(tmp_path, _pack(builder.path, f"{commits[2]}\n")))
    thin = _pack(builder.path, f"{commits[5]}\n^{commits[2]}\n", "--thin")
    started = _spawned(monkeypatch)
    name = ingest_pack(target, _spool(tmp_path, thin))
    assert started == [] and name is not None
    completed = target / "objects" / "pack" / f"{name}.pack"
    (count,) = struct.unpack(">I", completed.read_bytes()[8:12])
    (thin_count,) = struct.unpack(">I", thin[8:12])
    assert count > thin_count, "the thin pack's bases were appended"
    assert all(has_object(target, c) for c in commits)
    assert_fsck_clean(target)
    alone = init_bare(tmp_path / "alone.git")  # the completed pack needs nothing else
    shutil.copy(completed, alone / "objects" / "pack")
    git("index-pack", alone / "objects" / "pack" / completed.name)
    assert git("cat-file", "-p", f"{commits[5]}:big.txt", git_dir=alone) == _version(5)


def test_thin_pack_whose_base_the_repository_lacks_is_refused_and_changes_nothing(
    history: tuple[RepoBuilder, list[str]], tmp_path: Path
):
    builder, commits = history
    target = init_bare(tmp_path / "target.git")
    thin = _pack(builder.path, f"{commits[5]}\n^{commits[2]}\n", "--thin")
    before = objects_listing(target)
    with pytest.raises(ValueError, match="bases are missing"):
        ingest_pack(target, _spool(tmp_path, thin))
    assert objects_listing(target) == before


def _with_checksum(body: bytes) -> bytes:
    return body + hashlib.sha1(body).digest()


def _corruptions(data: bytes) -> dict[str, bytes]:
    body = data[:-20]
    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 0x55  # inside some object's compressed data
    count = struct.unpack(">I", body[8:12])[0]
    return {
        "truncated": data[: len(data) // 2],
        "bad checksum": body + bytes(20),
        "flipped byte, checksum fixed": _with_checksum(bytes(flipped)),
        "one object too many announced": _with_checksum(
            body[:8] + struct.pack(">I", count + 1) + body[12:]
        ),
        "trailing garbage, checksum fixed": _with_checksum(body + b"\x00" * 7),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "truncated",
        "bad checksum",
        "flipped byte, checksum fixed",
        "one object too many announced",
        "trailing garbage, checksum fixed",
    ],
)
def test_s7_2_corrupt_small_pack_leaves_the_repository_exactly_as_before(
    history: tuple[RepoBuilder, list[str]], tmp_path: Path, kind: str
):
    builder, commits = history
    target = init_bare(tmp_path / "target.git")
    ingest_pack(target, _spool(tmp_path, _pack(builder.path, f"{commits[1]}\n")))
    before = objects_listing(target)
    bad = _corruptions(_pack(builder.path, f"{commits[5]}\n^{commits[1]}\n"))[kind]
    with pytest.raises(Exception) as info:
        ingest_pack(target, _spool(tmp_path, bad))
    assert not isinstance(info.value, PackTooBig)
    assert objects_listing(target) == before
    assert not has_object(target, commits[5])
    assert_fsck_clean(target)


def test_s7_2_a_small_pack_failing_at_its_last_rename_leaves_no_file_and_no_pack(
    history: tuple[RepoBuilder, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The pack and its index are written under temporary names in objects/pack: an error
    before the index's rename (a full disk, a kill) removes them, and git sees no new pack."""
    builder, commits = history
    target = init_bare(tmp_path / "target.git")
    ingest_pack(target, _spool(tmp_path, _pack(builder.path, f"{commits[1]}\n")))
    before = objects_listing(target)
    real_replace = pack_ingest.os.replace

    def failing_on_the_index(src, dst):
        if str(dst).endswith(".idx"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(pack_ingest.os, "replace", failing_on_the_index)
    with pytest.raises(OSError, match="No space"):
        ingest_pack(target, _spool(tmp_path, _pack(builder.path, f"{commits[5]}\n^{commits[1]}\n")))
    monkeypatch.undo()
    leftovers = [p for p in objects_listing(target) if pack_ingest.TEMP_PREFIX in p]
    assert leftovers == []
    assert not has_object(target, commits[5]), "a pack without its index is no pack"
    assert all(p in objects_listing(target) for p in before)
    assert_fsck_clean(target)


def test_s7_2_corrupt_small_pack_from_a_server_is_a_protocol_error(
    history: tuple[RepoBuilder, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Through a real git http-backend: a byte of the pack flipped on arrival."""
    builder, commits = history
    target = init_bare(tmp_path / "target.git")
    real_write = PackSpool.write

    def flipping_write(self: PackSpool, data: bytes) -> int:
        if self.size < 40 <= self.size + len(data):
            data = bytearray(data)
            data[40 - self.size] ^= 0xFF
        return real_write(self, bytes(data))

    monkeypatch.setattr(PackSpool, "write", flipping_write)
    before = objects_listing(target)
    with GitServer(builder.path.parent) as server, pytest.raises(FetchError) as info:
        fetch_oids(target, server.url("src.git"), [commits[-1]], policy=PRIVATE_OK, limits=QUICK)
    assert info.value.reason == "protocol", info.value
    assert objects_listing(target) == before


def test_incremental_fetch_of_a_few_commits_is_indexed_here(
    history: tuple[RepoBuilder, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Through a real git http-backend: the repository has the first commits (a ref gives
    the haves), the second fetch brings the rest, indexed without a git child."""
    builder, commits = history
    target = init_bare(tmp_path / "target.git")
    url_root = builder.path.parent
    with GitServer(url_root) as server:
        url = server.url("src.git")
        assert fetch_oids(target, url, [commits[2]], policy=PRIVATE_OK, limits=QUICK)
        set_nostr_ref(target, "e" * 64, commits[2])
        started = _spawned(monkeypatch)
        assert fetch_oids(target, url, [commits[5]], policy=PRIVATE_OK, limits=QUICK) == [
            commits[5]
        ]
    assert _index_packs(started) == 0
    assert all(has_object(target, c) for c in commits)
    assert_fsck_clean(target)


def test_pack_above_the_object_bound_still_goes_to_git_index_pack(
    big_repo: BigRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target = init_bare(tmp_path / "target.git")
    started = _spawned(monkeypatch)
    with GitServer(big_repo.root) as server:
        tip = big_repo.commits[-1]
        assert fetch_oids(target, server.url("big.git"), [tip], policy=PRIVATE_OK, limits=QUICK)
    assert _index_packs(started) == 1
    assert has_object(target, big_repo.commits[0])


def test_small_pack_that_inflates_beyond_the_bound_goes_to_git_index_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """One object of 3 MiB of zeros: a 3 KiB pack, past the inflated bound, so git indexes it."""
    source = init_bare(tmp_path / "zeros.git")
    blob = git("hash-object", "-w", "--stdin", git_dir=source, input=bytes(3 << 20)).strip()
    data = _blob_pack(source, blob)
    assert len(data) <= pack_ingest.SMALL_PACK_MAX_BYTES
    with pytest.raises(PackTooBig):
        index_small_pack(data, _no_base, max_inflated=pack_ingest.SMALL_PACK_MAX_INFLATED)
    target = init_bare(tmp_path / "target.git")
    started = _spawned(monkeypatch)
    assert ingest_pack(target, _spool(tmp_path, data)) is not None
    assert _index_packs(started) == 1
    assert has_object(target, blob)


def test_a_pack_of_no_objects_installs_nothing(tmp_path: Path):
    target = init_bare(tmp_path / "target.git")
    before = objects_listing(target)
    empty = _with_checksum(b"PACK" + struct.pack(">II", 2, 0))
    assert ingest_pack(target, _spool(tmp_path, empty)) is None
    assert objects_listing(target) == before


def test_a_delta_that_copies_its_base_over_and_over_is_bounded(tmp_path: Path):
    """A few delta bytes may declare a huge result: the declared size is charged first."""
    base = b"x" * 1000
    blob = _object(3, base)
    # delta: source size 1000, target size 2**30, one copy op (never applied)
    delta = _varint(1000) + _varint(1 << 30) + b"\x90\xe8\x03"
    ofs = _object(6, delta, ofs=len(blob))
    body = b"PACK" + struct.pack(">II", 2, 2) + blob + ofs
    with pytest.raises(PackTooBig):
        index_small_pack(_with_checksum(body), _no_base, max_inflated=8 << 20)


def _no_base(oid: bytes) -> tuple[int, bytes]:
    raise KeyError(oid)


def _blob_pack(repo: Path, blob: str) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", str(repo), "pack-objects", "--stdout"],
        input=f"{blob}\n".encode(),
        capture_output=True,
        check=True,
    ).stdout


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _object(kind: int, body: bytes, *, ofs: int = 0) -> bytes:
    size = len(body)
    head = bytearray([(kind << 4) | (size & 15)])
    size >>= 4
    while size:
        head[-1] |= 0x80
        head.append(size & 0x7F)
        size >>= 7
    if kind == 6:  # offset of the base, counted back from this object (one byte suffices)
        assert ofs < 0x80
        head.append(ofs)
    return bytes(head) + zlib.compress(body)
