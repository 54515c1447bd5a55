"""S14.1: the ref advertisement parsed as a stream under its own caps (``grasp/git/advert.py``).

The input of the "exactly as before" tests is what real git sends: ``git upload-pack
--advertise-refs`` (v0 and v2) and a v2 ``ls-refs`` answer, parsed by our reader and by
dulwich's own functions, and whole discoveries through a real ``git http-backend`` by our client
and by dulwich's.  The other tests feed bytes from memory, so each failure mode is exact.
"""

from __future__ import annotations

import io
import subprocess
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from dulwich.client import (
    Urllib3HttpGitClient,
    _extract_symrefs_and_agent,
    read_pkt_refs_v1,
    read_pkt_refs_v2,
    read_server_capabilities,
)
from dulwich.errors import GitProtocolError
from dulwich.protocol import Protocol, split_peeled_refs
from dulwich.repo import Repo

from grasp.git.advert import (
    MAX_CAPABILITY_BYTES,
    AdvertBudget,
    AdvertisementError,
    AdvertLimits,
    PktReader,
    keep_all,
    read_info_refs,
    read_v2_refs,
    under_prefixes,
)
from grasp.git.errors import TooLarge
from grasp.git.fetch import _NewTips
from grasp.git.http_client import ByteBudget, GraspHttpGitClient
from grasp.git.pinned_pool import make_pool_manager
from tests.git.conftest import PRIVATE_OK, Source
from tests.support.endless_refs import capability_lines, pkt, ref_lines
from tests.support.gitchaos import protocol_v0_only
from tests.support.gitrepo import init_bare
from tests.support.gitserver import GitServer

LIMITS = AdvertLimits(max_bytes=1 << 20, max_refs=10_000)
V0_HEAD = pkt(b"# service=git-upload-pack\n") + b"0000"


def reader(data: bytes, limits: AdvertLimits = LIMITS, *, step: int | None = None) -> PktReader:
    """A reader over ``data``; ``step`` makes every read return at most that many bytes."""
    stream = io.BytesIO(data)
    read = stream.read if step is None else (lambda n: stream.read(min(n, step)))
    return PktReader(read, AdvertBudget(limits))


def v0_advert(refs: bytes, caps: bytes = b"multi_ack side-band-64k ofs-delta") -> bytes:
    first = pkt(b"%040x HEAD\x00%s\n" % (1, caps))
    return V0_HEAD + first + refs + b"0000"


# --- caps ----------------------------------------------------------------------------------


def test_s14_1_cap_by_bytes_stops_the_stream_with_too_large():
    data = v0_advert(ref_lines(0, 20_000))  # 1.3 MiB against a 1 MiB cap
    parser = reader(data, AdvertLimits(max_bytes=1 << 20, max_refs=1 << 20))
    with pytest.raises(TooLarge, match="larger than 1048576 bytes"):
        read_info_refs(parser, keep_all)
    assert parser.budget.received <= LIMITS.max_bytes + 64 * 1024, "stopped within a block"


def test_s14_1_cap_by_count_stops_at_the_first_ref_over_it():
    limits = AdvertLimits(max_bytes=1 << 30, max_refs=100)
    ok = read_v2_refs(reader(ref_lines(0, 100) + b"0000", limits), keep_all)
    assert len(ok.refs) == 100
    with pytest.raises(TooLarge, match="more than 100 refs"):
        read_v2_refs(reader(ref_lines(0, 101) + b"0000", limits), keep_all)


def test_s14_1_v0_peeled_lines_are_not_counted_as_refs():
    """v2 lists a tag's peeled value on the tag's own line; v0 on a line of its own. The count
    is of refs either way, so a repository fits the same cap over both protocols."""
    limits = AdvertLimits(max_bytes=1 << 30, max_refs=2)
    tag = pkt(b"%040x refs/tags/v1\n" % 2) + pkt(b"%040x refs/tags/v1^{}\n" % 3)
    _, advert = read_info_refs(reader(v0_advert(tag), limits), keep_all)
    assert list(advert.refs) == [b"HEAD", b"refs/tags/v1"]
    assert advert.peeled == {b"refs/tags/v1": b"%040x" % 3}
    with pytest.raises(TooLarge, match="more than 2 refs"):
        read_info_refs(reader(v0_advert(tag + ref_lines(0, 1)), limits), keep_all)


def test_s14_1_endless_v2_capability_list_is_too_large():
    data = pkt(b"version 2\n") + capability_lines(0, 10_000) + b"0000"
    with pytest.raises(TooLarge, match=f"larger than {MAX_CAPABILITY_BYTES} bytes"):
        read_info_refs(reader(data), keep_all)


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        AdvertLimits(max_bytes=0)
    with pytest.raises(ValueError, match="positive"):
        AdvertLimits(max_refs=-1)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cut", [3, 10, len(V0_HEAD) + 30], ids=["in-length", "in-payload", "in-ref-line"]
)
def test_truncated_stream_is_an_advertisement_error(cut: int):
    data = v0_advert(ref_lines(0, 3))[:cut]
    with pytest.raises(AdvertisementError, match="truncated"):
        read_info_refs(reader(data), keep_all)


def test_stream_ending_before_its_flush_is_truncated():
    with pytest.raises(AdvertisementError, match="truncated"):
        read_v2_refs(reader(ref_lines(0, 3)), keep_all)


@pytest.mark.parametrize(
    "bad",
    [b"zz12", b"+01a", b"0x1a", b" 01a", b"0002", b"0003", b"fff1"],
    ids=["not-hex", "sign", "0x", "space", "response-end", "0003", "over-65520"],
)
def test_malformed_pkt_line_length_is_an_advertisement_error(bad: bytes):
    with pytest.raises(AdvertisementError, match="pkt-line length"):
        read_v2_refs(reader(ref_lines(0, 2) + bad + b"x" * 40 + b"0000"), keep_all)


@pytest.mark.parametrize(
    "line",
    [b"nospace\n", b"%040x\n" % 1, b"g" * 40 + b" refs/heads/x\n", b"abc refs/heads/x\n"],
    ids=["one-word", "no-ref", "non-hex-oid", "short-oid"],
)
def test_malformed_ref_lines_are_advertisement_errors(line: bytes):
    with pytest.raises(AdvertisementError, match="malformed"):
        read_v2_refs(reader(pkt(line) + b"0000"), keep_all)
    with pytest.raises(AdvertisementError, match="malformed"):
        read_info_refs(reader(v0_advert(pkt(line))), keep_all)


def test_err_line_is_the_servers_message():
    with pytest.raises(GitProtocolError, match="access denied"):
        read_v2_refs(reader(pkt(b"ERR access denied\n") + b"0000"), keep_all)
    with pytest.raises(GitProtocolError, match="no such repository"):
        read_info_refs(reader(pkt(b"ERR no such repository\n")), keep_all)


def test_reply_that_is_neither_v0_nor_v2_is_refused():
    with pytest.raises(AdvertisementError, match="unexpected first line"):
        read_info_refs(reader(pkt(b"hello\n") + b"0000"), keep_all)
    two_lines = pkt(b"# service=git-upload-pack\n") + pkt(b"more\n") + b"0000"
    with pytest.raises(AdvertisementError, match="more than one line"):
        read_info_refs(reader(two_lines), keep_all)


# --- streaming: memory follows what is kept ------------------------------------------------


def _peak_bytes(parse: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        parse()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_s14_1_memory_follows_what_is_kept_not_what_was_sent():
    data = ref_lines(0, 100_000) + b"0000"  # 6.5 MiB, 100,000 distinct refs
    limits = AdvertLimits(max_bytes=1 << 30, max_refs=1 << 20)

    def keep_ten(ref: bytes, sha: bytes | None) -> bool:
        return ref < b"refs/heads/r0000000010"

    kept = read_v2_refs(reader(data, limits), keep_ten)
    assert len(kept.refs) == 10
    streaming = _peak_bytes(lambda: read_v2_refs(reader(data, limits), keep_ten))
    dulwich = _peak_bytes(
        lambda: read_pkt_refs_v2(Protocol(io.BytesIO(data).read, None).read_pkt_seq())
    )
    assert streaming < 1 << 20, f"{streaming} bytes at peak while keeping 10 refs"
    assert dulwich > 10 * streaming, (dulwich, streaming)


def test_one_byte_reads_parse_the_same():
    data = v0_advert(ref_lines(0, 50))
    _, whole = read_info_refs(reader(data), keep_all)
    _, trickled = read_info_refs(reader(data, step=1), keep_all)
    assert trickled == whole and len(whole.refs) == 51


def test_ref_prefix_limits_what_a_v0_advertisement_keeps():
    keep = under_prefixes(keep_all, [b"refs/heads/r000000000"])
    _, advert = read_info_refs(reader(v0_advert(ref_lines(0, 20))), keep)
    assert len(advert.refs) == 10 and b"HEAD" not in advert.refs
    assert under_prefixes(keep_all, None) is keep_all


def test_new_tips_keep_only_tips_the_target_lacks_once_each(source: Source, tmp_path: Path):
    have, lack = source.main[0].encode(), b"%040x" % 7
    with Repo(str(source.path)) as repo:
        keep = _NewTips().ref_filter(repo)
        kept = [
            keep(b"refs/heads/a", have),
            keep(b"refs/heads/b", lack),
            keep(b"refs/heads/c", lack),
        ]
        assert kept == [False, True, False]
        assert keep(b"refs/heads/unborn", None) is False


# --- an ordinary advertisement, exactly as before -------------------------------------------


def _upload_pack(repo: Path, *args: str, v2: bool = False, stdin: bytes = b"") -> bytes:
    env_args = ["env", "GIT_PROTOCOL=version=2"] if v2 else []
    return subprocess.run(
        [*env_args, "git", "upload-pack", "--stateless-rpc", *args, str(repo)],
        input=stdin, capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip


def test_ordinary_v0_advertisement_parses_as_dulwich_parses_it(source: Source):
    body = _upload_pack(source.path, "--advertise-refs")
    version, ours = read_info_refs(reader(V0_HEAD + body), keep_all)
    theirs, caps = read_pkt_refs_v1(Protocol(io.BytesIO(body).read, None).read_pkt_seq())
    refs, peeled = split_peeled_refs(theirs)
    assert version == 0
    assert (ours.refs, ours.capabilities, ours.peeled) == (refs, caps, peeled)
    assert ours.symrefs == _extract_symrefs_and_agent(caps)[0] == {b"HEAD": b"refs/heads/main"}
    assert set(ours.refs) == {b"HEAD", b"refs/heads/main", b"refs/heads/side", b"refs/tags/v1"}


def test_ordinary_v2_capabilities_and_ls_refs_parse_as_dulwich_parses_them(source: Source):
    body = _upload_pack(source.path, "--advertise-refs", v2=True)
    version, ours = read_info_refs(reader(body), keep_all)
    proto = Protocol(io.BytesIO(body).read, None)
    assert proto.read_pkt_line() == b"version 2\n"
    assert version == 2 and ours.capabilities == read_server_capabilities(proto.read_pkt_seq())

    request = b"".join(
        [pkt(b"command=ls-refs\n"), b"0001", pkt(b"peel\n"), pkt(b"symrefs\n"), b"0000"]
    )
    answer = _upload_pack(source.path, v2=True, stdin=request)
    listed = read_v2_refs(reader(answer), keep_all)
    refs, symrefs, peeled = read_pkt_refs_v2(Protocol(io.BytesIO(answer).read, None).read_pkt_seq())
    assert (listed.refs, listed.symrefs, listed.peeled) == (refs, symrefs, peeled)
    assert peeled == {b"refs/tags/v1": source.main[1].encode()}


@pytest.mark.parametrize("v0", [False, True], ids=["v2", "v0"])
def test_discovery_through_git_http_backend_equals_dulwichs(source: Source, v0: bool):
    with GitServer(source.root, wrap=protocol_v0_only() if v0 else None) as server:
        url = server.url("src.git")
        pool = make_pool_manager(PRIVATE_OK, {}, read_timeout=5)
        ours = GraspHttpGitClient(url, pool, ByteBudget(1 << 30), LIMITS)
        theirs = Urllib3HttpGitClient(url, pool_manager=pool, config=None)
        discovered = [
            client._discover_references(b"git-upload-pack", url + "/") for client in (ours, theirs)
        ]
    assert discovered[0] == discovered[1]
    assert ours.protocol_version == theirs.protocol_version == (0 if v0 else 2)
    assert discovered[0][0][b"refs/heads/main"] == source.main[-1].encode()


def test_empty_repository_advertises_no_refs(tmp_path: Path):
    """git sends only a flush-pkt for an empty repository; other servers send a
    ``capabilities^{}`` line with the zero id, which is no ref either."""
    body = _upload_pack(init_bare(tmp_path / "empty.git"), "--advertise-refs")
    _, advert = read_info_refs(reader(V0_HEAD + body), keep_all)
    theirs = read_pkt_refs_v1(Protocol(io.BytesIO(body).read, None).read_pkt_seq())
    assert (advert.refs, advert.capabilities) == theirs == ({}, set())
    line = pkt(b"0" * 40 + b" capabilities^{}\x00ofs-delta side-band-64k\n")
    _, advert = read_info_refs(reader(V0_HEAD + line + b"0000"), keep_all)
    assert advert.refs == {} and advert.peeled == {}
    assert advert.capabilities == {b"ofs-delta", b"side-band-64k"}
