"""Upload-pack advertisements always carry GRASP's capabilities (GRASP-01 L56, S15.3), ``HEAD``
on ``info/refs`` and UTF-8 repository paths in the bridge — with the real git client.

git 2.39 (this machine's) advertises nothing at all for an empty repository in protocol v0; the
bridge completes that answer, and appends the ``allow-*`` names to every v2 advertisement, but
only what the repository's ``uploadpack.*`` settings really grant.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from gevent.pywsgi import WSGIServer

from grasp.git.advertisement import (
    REQUIRED_CAPABILITIES,
    complete_v0_advertisement,
    complete_v2_advertisement,
    granted,
    pkt_line,
)
from grasp.git.http_backend import make_git_http_app
from tests.support.gitrepo import RepoBuilder, for_each_ref, git, init_bare

GRASP_CONFIG = {
    "uploadpack.allowTipSHA1InWant": "true",
    "uploadpack.allowReachableSHA1InWant": "true",
    "uploadpack.allowFilter": "true",
}
EMPTY_V0 = pkt_line(b"# service=git-upload-pack\n") + b"0000" + b"0000"


@pytest.fixture
def http() -> Iterator[urllib3.PoolManager]:
    with urllib3.PoolManager(retries=False, timeout=10) as pool:
        yield pool


def _serve(root: Path, config: dict[str, str]) -> WSGIServer:
    server = WSGIServer(
        ("127.0.0.1", 0), make_git_http_app(root, config=config), log=None, error_log=None
    )
    server.start()
    return server


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A root with an empty and a non-empty repository, served with GRASP's settings."""
    init_bare(tmp_path / "empty.git")
    RepoBuilder.create(tmp_path / "full.git").chain(2, branch="main")
    server = _serve(tmp_path, GRASP_CONFIG)
    yield tmp_path, f"http://127.0.0.1:{server.server_port}"
    server.stop(timeout=5)


# -- pure ------------------------------------------------------------------------------------


def test_s15_3_only_the_bare_flush_answer_of_an_empty_repository_is_rewritten():
    done = complete_v0_advertisement(EMPTY_V0, ["allow-tip-sha1-in-want", "filter"])
    assert done == (
        pkt_line(b"# service=git-upload-pack\n")
        + b"0000"
        + pkt_line(b"0" * 40 + b" capabilities^{}\0allow-tip-sha1-in-want filter\n")
        + b"0000"
    )
    with_refs = EMPTY_V0[:-4] + pkt_line(b"a" * 40 + b" refs/heads/main\0caps\n") + b"0000"
    assert complete_v0_advertisement(with_refs, ["filter"]) is None
    assert complete_v0_advertisement(done, ["filter"]) is None  # git >= 2.41's own form


def test_s15_3_v2_lines_are_appended_once_before_the_flush():
    body = pkt_line(b"version 2\n") + pkt_line(b"fetch=shallow filter\n") + b"0000"
    done = complete_v2_advertisement(body, ["allow-tip-sha1-in-want"])
    assert done == body[:-4] + pkt_line(b"allow-tip-sha1-in-want\n") + b"0000"
    assert complete_v2_advertisement(done, ["allow-tip-sha1-in-want"]) is None
    assert complete_v2_advertisement(EMPTY_V0, ["allow-tip-sha1-in-want"]) is None
    assert complete_v2_advertisement(b"00zzgarbage", ["x"]) is None


def test_only_what_the_configuration_grants_is_advertised():
    assert {"allow-tip-sha1-in-want", "allow-reachable-sha1-in-want", "filter"} <= set(
        granted(GRASP_CONFIG)
    )
    assert not {"allow-tip-sha1-in-want", "allow-reachable-sha1-in-want", "filter"} & set(
        granted({})
    )
    any_sha1 = granted({"uploadpack.allowAnySHA1InWant": "true"})
    assert "allow-tip-sha1-in-want" in any_sha1 and "allow-reachable-sha1-in-want" in any_sha1


# -- over HTTP, with git 2.39 ----------------------------------------------------------------


def test_grasp01_l56_empty_repository_v0_advertisement_carries_the_capabilities(served, http):
    _, base = served
    answer = http.request("GET", f"{base}/empty.git/info/refs?service=git-upload-pack")
    assert answer.status == 200
    assert b"capabilities^{}\0" in answer.data
    for name in REQUIRED_CAPABILITIES:
        assert name.encode() in answer.data


def test_grasp01_l56_v2_advertisement_carries_the_capabilities(served, http):
    _, base = served
    for repo in ("empty.git", "full.git"):
        answer = http.request(
            "GET",
            f"{base}/{repo}/info/refs?service=git-upload-pack",
            headers={"Git-Protocol": "version=2"},
        )
        assert answer.data.startswith(b"000eversion 2\n")
        for name in REQUIRED_CAPABILITIES:
            assert name.encode() in answer.data, (repo, answer.data)


@pytest.mark.parametrize("protocol", ["0", "2"])
def test_the_real_git_client_reads_the_completed_advertisements(served, tmp_path, protocol):
    """git 2.39 clones the empty repository (v0: the capabilities^{} line) and the full one
    (v2: the appended lines) and fetches an unadvertised reachable commit by id."""
    root, base = served
    empty = tmp_path / f"empty-clone-{protocol}"
    git("-c", f"protocol.version={protocol}", "clone", "--quiet", f"{base}/empty.git", empty)
    assert git("-C", empty, "for-each-ref").strip() == ""
    first = git("--git-dir", root / "full.git", "rev-list", "main").split()
    new, old = first[0], first[-1]
    target = init_bare(tmp_path / f"target-{protocol}.git")
    git(
        "-c",
        f"protocol.version={protocol}",
        "fetch",
        "--quiet",
        f"{base}/full.git",
        old,
        git_dir=target,
    )
    assert git("cat-file", "-t", old, git_dir=target).strip() == "commit"
    clone = tmp_path / f"full-clone-{protocol}.git"
    git(
        "-c",
        f"protocol.version={protocol}",
        "clone",
        "--bare",
        "--quiet",
        f"{base}/full.git",
        clone,
    )
    assert for_each_ref(clone)["refs/heads/main"] == new


def test_dulwich_clones_through_the_v2_lines(served, tmp_path):
    from dulwich.client import get_transport_and_path
    from dulwich.repo import Repo

    root, base = served
    target = Repo.init_bare(str(tmp_path / "dulwich.git"), mkdir=True)
    transport, path = get_transport_and_path(f"{base}/full.git")
    refs = transport.fetch(path, target).refs
    assert refs[b"refs/heads/main"].decode() == for_each_ref(root / "full.git")["refs/heads/main"]
    target.close()


def test_a_repository_served_without_the_settings_is_not_completed(tmp_path, http):
    init_bare(tmp_path / "plain.git")
    server = _serve(tmp_path, {})
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        v0 = http.request("GET", f"{base}/plain.git/info/refs?service=git-upload-pack")
        v2 = http.request(
            "GET",
            f"{base}/plain.git/info/refs?service=git-upload-pack",
            headers={"Git-Protocol": "version=2"},
        )
    finally:
        server.stop(timeout=5)
    assert b"allow-tip-sha1-in-want" not in v0.data and b"filter" not in v0.data
    assert b"allow-tip-sha1-in-want" not in v2.data


def test_s15_3_head_on_info_refs_is_answered_like_get_without_a_body(served, http):
    _, base = served
    url = f"{base}/full.git/info/refs?service=git-upload-pack"
    head = http.request("HEAD", url)
    get = http.request("GET", url)
    assert head.status == get.status == 200 and head.data == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert http.request("HEAD", f"{base}/full.git/git-upload-pack").status == 405


@pytest.mark.parametrize("identifier", ["émoji-🚀", "my repo", "a%2Fb"])
def test_s15_3_utf8_repository_paths_are_decoded_once(tmp_path, identifier):
    """The client percent-encodes the UTF-8 name; the bridge finds ``<identifier>.git``. A
    literal ``%2F`` in a name stays literal (never decoded a second time)."""
    RepoBuilder.create(tmp_path / f"{identifier}.git").commit(branch="main")
    server = _serve(tmp_path, GRASP_CONFIG)
    try:
        from urllib.parse import quote

        url = f"http://127.0.0.1:{server.server_port}/{quote(identifier)}.git"
        clone = tmp_path / "clone.git"
        git("clone", "--bare", "--quiet", url, clone)
        assert "refs/heads/main" in for_each_ref(clone)
        broken = subprocess.run(
            ["git", "ls-remote", url.replace(quote(identifier), "%ff%fe")], capture_output=True
        )
        assert broken.returncode != 0  # not UTF-8: 404, never a crash
    finally:
        server.stop(timeout=5)


def test_the_bridge_holds_back_only_what_may_need_completing():
    from grasp.git.advertisement import awaiting

    assert awaiting(b"", v2=False, limit=100) and awaiting(EMPTY_V0[:10], v2=False, limit=100)
    assert not awaiting(EMPTY_V0, v2=False, limit=100)  # complete: one more read says if EOF
    assert not awaiting(b"first", v2=False, limit=100)  # anything else streams at once
    v2 = pkt_line(b"version 2\n") + pkt_line(b"agent=git/2.39.5\n")
    assert awaiting(v2[:7], v2=True, limit=100) and awaiting(v2, v2=True, limit=100)
    assert not awaiting(v2 + b"0000", v2=True, limit=100)
    assert not awaiting(v2, v2=True, limit=10)
    assert not awaiting(b"first", v2=True, limit=100)
