"""Building and inspecting git repositories in tests, with the real git CLI only.

Why the CLI and not dulwich: these fixtures are the independent reference the code under test
(which uses dulwich) is checked against.

* :class:`RepoBuilder` makes commits, branches, annotated tags and dangling commits in a *bare*
  repository through plumbing (``hash-object``, ``mktree``, ``commit-tree``), without a work tree.
  tests/conftest.py fixes the author/committer dates, so contents are varied with a counter to
  keep commits distinct.
* :func:`linear_history` writes a long history in one ``git fast-import`` run (2,000 commits over
  200 files take well under a second), for hub-stall tests and benchmarks.
* :func:`fsck`, :func:`for_each_ref`, :func:`objects_listing`, :func:`has_object` inspect.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


def git(*args: str | Path, git_dir: Path | None = None, input: bytes | None = None) -> str:
    """Run git and return stdout (text); raise with stderr on failure."""
    cmd = ["git"]
    if git_dir is not None:
        cmd += ["--git-dir", str(git_dir)]
    cmd += [str(a) for a in args]
    proc = subprocess.run(cmd, input=input, capture_output=True)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}"
        )
    return proc.stdout.decode()


def init_bare(path: Path, *, initial_branch: str = "main") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", f"--initial-branch={initial_branch}", path)
    return path


@dataclass
class RepoBuilder:
    """Grow a bare repository commit by commit.  Every commit gets its own content."""

    path: Path
    _counter: int = field(default=0, init=False)

    @classmethod
    def create(cls, path: Path) -> RepoBuilder:
        return cls(init_bare(path))

    def commit(
        self,
        message: str | None = None,
        *,
        parents: list[str] | tuple[str, ...] = (),
        files: dict[str, str] | None = None,
        branch: str | None = None,
    ) -> str:
        """A commit with ``files`` (default: one file with unique content) on ``parents``.

        With ``branch`` the branch is moved to the new commit; otherwise it is unreferenced
        (dangling) unless something else points at it later.
        """
        self._counter += 1
        files = (
            files
            if files is not None
            else {f"file{self._counter}.txt": f"content {self._counter}\n"}
        )
        tree = self._tree(files)
        message = message or f"commit {self._counter}"
        args: list[str] = ["commit-tree", tree, "-m", message]
        for parent in parents:
            args += ["-p", parent]
        oid = git(*args, git_dir=self.path).strip()
        if branch is not None:
            self.set_ref(f"refs/heads/{branch}", oid)
        return oid

    def chain(
        self, count: int, *, parent: str | None = None, branch: str | None = None
    ) -> list[str]:
        """``count`` commits, each on the previous one; returns them oldest first."""
        oids: list[str] = []
        for _ in range(count):
            oids.append(self.commit(parents=[parent] if parent else [], branch=branch))
            parent = oids[-1]
        return oids

    def tag(self, name: str, target: str, message: str = "a tag") -> str:
        """An annotated tag ``refs/tags/<name>``; returns the tag object's id."""
        git("tag", "-a", "-m", message, name, target, git_dir=self.path)
        return git("rev-parse", f"refs/tags/{name}", git_dir=self.path).strip()

    def blob(self, content: str) -> str:
        return git(
            "hash-object", "-w", "--stdin", git_dir=self.path, input=content.encode()
        ).strip()

    def set_ref(self, name: str, oid: str) -> None:
        git("update-ref", name, oid, git_dir=self.path)

    def delete_ref(self, name: str) -> None:
        git("update-ref", "-d", name, git_dir=self.path)

    def _tree(self, files: dict[str, str]) -> str:
        entries = "".join(
            f"100644 blob {self.blob(content)}\t{name}\n" for name, content in sorted(files.items())
        )
        return git("mktree", git_dir=self.path, input=entries.encode()).strip()


def linear_history(
    path: Path, commits: int, *, files: int = 200, branch: str = "main"
) -> list[str]:
    """A bare repository with ``commits`` linear commits on ``branch``, via ``git fast-import``.

    Each commit rewrites one of ``files`` files (2.6 KiB, half of it new hash-like text), so
    the pack has deltas, trees and poorly compressible data like a real project (2,000 commits:
    about 8,000 objects, 3.5 MiB pack).  Returns the commit ids, oldest first.
    """
    init_bare(path, initial_branch=branch)
    chunks: list[bytes] = []
    for i in range(1, commits + 1):
        body = _revision_text(i % files, i)
        message = f"commit {i}\n".encode()
        chunks += [
            f"commit refs/heads/{branch}\nmark :{i}\n".encode(),
            b"committer Test Committer <committer@example.invalid> 1700000000 +0000\n",
            b"data %d\n%s" % (len(message), message),
            *([f"from :{i - 1}\n".encode()] if i > 1 else []),
            f"M 100644 inline dir{i % 20}/file{i % files}.txt\n".encode(),
            b"data %d\n%s\n" % (len(body), body),
        ]
    marks = path / "fast-import.marks"
    git("fast-import", "--quiet", f"--export-marks={marks}", git_dir=path, input=b"".join(chunks))
    by_mark = dict(line.split() for line in marks.read_text().splitlines())
    marks.unlink()
    return [by_mark[f":{i}"] for i in range(1, commits + 1)]


def _revision_text(file_no: int, revision: int) -> bytes:
    lines = []
    for j in range(40):
        seed = f"{file_no}:{j}" if j % 2 else f"{file_no}:{j}:{revision}"
        lines.append(hashlib.sha256(seed.encode()).hexdigest())
    return ("\n".join(lines) + "\n").encode()


def self_signed_cert(directory: Path, hostname: str) -> tuple[Path, Path]:
    """A throw-away certificate for ``hostname`` (openssl CLI); returns (certfile, keyfile)."""
    cert, key = directory / f"{hostname}.crt", directory / f"{hostname}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={hostname}",
         "-addext", f"subjectAltName=DNS:{hostname}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def fsck(path: Path) -> subprocess.CompletedProcess[str]:
    """``git fsck --full --strict``; a repository that only has dangling objects passes."""
    return subprocess.run(
        ["git", "--git-dir", str(path), "fsck", "--full", "--strict", "--no-progress"],
        capture_output=True,
        text=True,
    )


def assert_fsck_clean(path: Path) -> None:
    proc = fsck(path)
    problems = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line and not line.startswith(("dangling ", "notice: ", "Checking "))
    ]
    assert proc.returncode == 0 and not problems, (
        f"git fsck {path}: rc={proc.returncode}\n{proc.stdout}{proc.stderr}"
    )


def for_each_ref(path: Path) -> dict[str, str]:
    """Every ref (name -> OID) as git itself lists it."""
    out = git("for-each-ref", "--format=%(refname) %(objectname)", git_dir=path)
    return dict(line.split(" ", 1) for line in out.splitlines())


def symbolic_head(path: Path) -> str:
    return git("symbolic-ref", "HEAD", git_dir=path).strip()


def has_object(path: Path, oid: str) -> bool:
    return (
        subprocess.run(
            ["git", "--git-dir", str(path), "cat-file", "-e", oid], capture_output=True
        ).returncode
        == 0
    )


def objects_listing(path: Path) -> set[str]:
    """Every file and directory below ``objects/`` (relative paths), to prove nothing changed."""
    root = path / "objects"
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        found.update(os.path.normpath(os.path.join(rel, name)) for name in dirnames + filenames)
    return found
