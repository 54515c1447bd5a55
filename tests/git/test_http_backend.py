"""The WSGI bridge to git http-backend (S10.5):
v2, gzip and chunked bodies, streaming, push hook."""

from __future__ import annotations

import gzip
import io
import os
import stat
import subprocess
from pathlib import Path

import pytest
import urllib3

from grasp.git.receive import read_push_commands
from tests.git.conftest import Source
from tests.support.gitrepo import RepoBuilder, for_each_ref, git, init_bare
from tests.support.gitserver import GitServer
from tests.support.wait import wait_for


def pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


LS_REFS_V2 = pkt(b"command=ls-refs\n") + b"0001" + pkt(b"peel\n") + b"0000"


@pytest.fixture
def http() -> urllib3.PoolManager:
    with urllib3.PoolManager(retries=False, timeout=10) as pool:
        yield pool


def test_s10_5_protocol_v2_when_the_client_asks_for_it(
    server: GitServer, http: urllib3.PoolManager
):
    url = server.url("src.git/info/refs?service=git-upload-pack")
    v2 = http.request("GET", url, headers={"Git-Protocol": "version=2"})
    v0 = http.request("GET", url)
    assert v2.status == v0.status == 200
    assert v2.data.startswith(b"000eversion 2\n")
    assert v0.data.startswith(b"001e# service=git-upload-pack\n")
    assert v0.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"
    assert "no-cache" in v0.headers["Cache-Control"]


def test_s10_5_gzip_request_bodies_are_accepted(
    server: GitServer, source: Source, http: urllib3.PoolManager
):
    resp = http.request(
        "POST",
        server.url("src.git/git-upload-pack"),
        body=gzip.compress(LS_REFS_V2),
        headers={
            "Git-Protocol": "version=2",
            "Content-Type": "application/x-git-upload-pack-request",
            "Content-Encoding": "gzip",
        },
    )
    assert resp.status == 200
    assert f"{source.main[-1]} refs/heads/main".encode() in resp.data


@pytest.fixture(scope="module")
def many_branches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A served repository with 40 branches: cloning it sends a request body over 1 KiB."""
    root = tmp_path_factory.mktemp("many")
    builder = RepoBuilder.create(root / "many.git")
    base = builder.commit(branch="main")
    for i in range(40):
        builder.commit(parents=[base], branch=f"b{i}")
    return root


def test_s10_5_real_git_clone_with_a_chunked_request_body(many_branches: Path, tmp_path: Path):
    with GitServer(many_branches) as server:
        # A postBuffer smaller than the body makes git stream it chunked (protocol v0 here:
        # git's v2 client insists on a postBuffer of at least 64 KiB).
        git(
            "-c",
            "protocol.version=0",
            "-c",
            "http.postBuffer=100",
            "clone",
            "--quiet",
            "--bare",
            server.url("many.git"),
            tmp_path / "v0.git",
        )
        # (git first sends a tiny "probe" POST before streaming a body it cannot buffer)
        assert any(r.chunked for r in server.requests if r.method == "POST")
    assert for_each_ref(tmp_path / "v0.git") == for_each_ref(many_branches / "many.git")


def test_s10_5_real_git_clone_with_protocol_v2_and_a_gzip_request_body(
    many_branches: Path, tmp_path: Path
):
    with GitServer(many_branches) as server:
        git(
            "-c",
            "protocol.version=2",
            "clone",
            "--quiet",
            "--bare",
            server.url("many.git"),
            tmp_path / "v2.git",
        )
        posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == 2, "v2: ls-refs, then fetch"
    assert posts[-1].content_encoding == "gzip"
    assert for_each_ref(tmp_path / "v2.git") == for_each_ref(many_branches / "many.git")


@pytest.mark.parametrize(
    "path, status",
    [
        ("nope.git/info/refs?service=git-upload-pack", 404),
        ("../served0/src.git/info/refs?service=git-upload-pack", 404),
        ("src.git/HEAD", 404),
        ("src.git/objects/info/packs", 404),
        ("src.git/info/refs?service=git-receive-pack", 403),
    ],
)
def test_s10_5_only_smart_http_of_known_repositories_is_served(
    server: GitServer, http, path: str, status: int
):
    assert http.request("GET", f"{server.base_url}/{path}").status == status


def test_wrong_methods_are_refused(server: GitServer, http: urllib3.PoolManager):
    assert (
        http.request("POST", server.url("src.git/info/refs?service=git-upload-pack")).status == 405
    )
    assert http.request("GET", server.url("src.git/git-upload-pack")).status == 405


def test_oversized_request_bodies_are_refused(source: Source, http: urllib3.PoolManager):
    with GitServer(source.root, max_request_bytes=1000) as server:
        resp = http.request("POST", server.url("src.git/git-upload-pack"), body=b"0" * 2000)
    assert resp.status == 413


def fake_backend(tmp_path: Path, body: str) -> str:
    """A stand-in CGI (shell script) for observing how the bridge runs and streams it."""
    script = tmp_path / "fake-backend"
    headers = "printf 'Status: 200 OK\\r\\nContent-Type: application/octet-stream\\r\\n\\r\\n'\n"
    script.write_text("#!/bin/sh\n" + headers + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_responses_are_streamed_while_the_backend_still_runs(source: Source, tmp_path: Path, http):
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    backend = fake_backend(tmp_path, f"printf first\nread line < {gate}\nprintf second\n")
    with GitServer(source.root, backend=backend) as server:
        resp = http.request(
            "GET", server.url("src.git/info/refs?service=git-upload-pack"), preload_content=False
        )
        assert resp.read1(100) == b"first", "the first bytes arrive while the backend is blocked"
        writer = wait_for(lambda: _open_for_writing(gate), message="the backend to open its gate")
        os.write(writer, b"go\n")
        os.close(writer)
        assert resp.read() == b"second"
        resp.release_conn()


def _open_for_writing(fifo: Path) -> int | None:
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: nobody has the FIFO open for reading yet
        return None


def test_backend_is_killed_when_the_client_goes_away(source: Source, tmp_path: Path):
    pidfile = tmp_path / "pid"
    backend = fake_backend(tmp_path, f"echo $$ > {pidfile}\nexec cat /dev/zero\n")
    with GitServer(source.root, backend=backend) as server:
        pool = urllib3.PoolManager(retries=False, timeout=10)
        resp = pool.request(
            "GET", server.url("src.git/info/refs?service=git-upload-pack"), preload_content=False
        )
        assert resp.read(65536)
        pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()))
        pool.clear()  # closes the socket mid-response
        resp.close()
        wait_for(lambda: not _alive(pid), message=f"backend {pid} to be killed")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _push(clone: Path, url: str, refspec: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "--git-dir", str(clone), "push", url, refspec], capture_output=True, text=True
    )


@pytest.fixture
def pushable(tmp_path: Path, source: Source) -> tuple[Path, Path, str]:
    """A served copy of the source (pushes enabled) and a local clone with one new commit."""
    root = tmp_path / "root"
    served = root / "dst.git"
    git("clone", "--quiet", "--bare", source.path, served)
    clone = tmp_path / "clone.git"
    git("clone", "--quiet", "--bare", source.path, clone)
    new = RepoBuilder(clone).commit(parents=[source.main[-1]], branch="main")
    return root, clone, new


def test_s10_6_before_receive_pack_can_refuse_a_push_with_a_message_git_prints(
    pushable, source: Source
):
    root, clone, _new = pushable
    seen: list[bytes] = []

    def refuse(environ, body):
        seen.append(body.read())
        return "refs do not match any state event"

    with GitServer(root, before_receive_pack=refuse) as server:
        server.configure("dst.git", **{"http.receivepack": "true"})
        proc = _push(clone, server.url("dst.git"), "refs/heads/main")
    assert proc.returncode != 0
    assert "remote: refs do not match any state event" in proc.stderr
    assert "[remote rejected] main -> main (refs do not match any state event)" in proc.stderr
    push = read_push_commands(io.BytesIO(seen[0]))
    assert [(c.old, c.ref) for c in push.commands] == [(source.main[-1], "refs/heads/main")]
    assert {"report-status", "report-status-v2"} & push.capabilities
    assert for_each_ref(root / "dst.git")["refs/heads/main"] == source.main[-1]


def test_s10_6_accepted_push_runs_receive_pack_and_reports_completion(pushable):
    root, clone, new = pushable
    done: list[bool] = []
    hooks = {
        "before_receive_pack": lambda environ, body: None,
        "after_receive_pack": lambda e, ok: done.append(ok),
    }
    with GitServer(root, **hooks) as server:
        server.configure("dst.git", **{"http.receivepack": "true"})
        proc = _push(clone, server.url("dst.git"), "refs/heads/main")
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: done, message="after_receive_pack")
    assert done == [True]
    assert for_each_ref(root / "dst.git")["refs/heads/main"] == new


def test_push_is_refused_by_git_unless_enabled(pushable, source: Source):
    root, clone, _new = pushable
    with GitServer(root) as server:
        proc = _push(clone, server.url("dst.git"), "refs/heads/main")
    assert proc.returncode != 0
    assert for_each_ref(root / "dst.git")["refs/heads/main"] == source.main[-1]


def test_empty_repository_is_served(tmp_path: Path, http: urllib3.PoolManager):
    init_bare(tmp_path / "empty.git")
    with GitServer(tmp_path) as server:
        assert (
            http.request("GET", server.url("empty.git/info/refs?service=git-upload-pack")).status
            == 200
        )
