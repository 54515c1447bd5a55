"""S10.6 helpers: reading push commands and building refusals git understands."""

from __future__ import annotations

import io

import pytest

from grasp.git.receive import (
    MalformedPush,
    PushRequest,
    RefUpdate,
    pkt_line,
    read_push_commands,
    refusal_response,
)

OLD, NEW = "a" * 40, "b" * 40


def body(*lines: bytes, pack: bytes = b"PACK...") -> io.BytesIO:
    return io.BytesIO(b"".join(pkt_line(line) for line in lines) + b"0000" + pack)


def test_commands_and_capabilities_are_read_up_to_the_flush():
    push = read_push_commands(
        body(
            f"{OLD} {NEW} refs/heads/main\0report-status side-band-64k agent=x".encode(),
            f"{'0' * 40} {NEW} refs/nostr/{'c' * 64}\n".encode(),
        )
    )
    assert push == PushRequest(
        (
            RefUpdate(OLD, NEW, "refs/heads/main"),
            RefUpdate("0" * 40, NEW, f"refs/nostr/{'c' * 64}"),
        ),
        frozenset({"report-status", "side-band-64k", "agent=x"}),
    )


@pytest.mark.parametrize(
    "raw", [b"", b"00", b"zzzz", b"0003", pkt_line(b"only two fields") + b"0000", pkt_line(b"x")]
)
def test_malformed_command_lists_are_refused(raw: bytes):
    with pytest.raises(MalformedPush):
        read_push_commands(io.BytesIO(raw))


def parse_pkts(data: bytes) -> list[bytes | None]:
    out: list[bytes | None] = []
    while data:
        size = int(data[:4], 16)
        out.append(data[4:size] if size else None)
        data = data[size or 4 :]
    return out


def test_refusal_with_sideband_and_report_status():
    push = PushRequest(
        (RefUpdate(OLD, NEW, "refs/heads/main"),), frozenset({"report-status", "side-band-64k"})
    )
    packets = parse_pkts(refusal_response(push, "not\nallowed"))
    assert packets[0] == b"\x02not allowed\n"
    assert packets[-1] is None
    report = parse_pkts(packets[1][1:])
    assert report == [b"unpack ok\n", b"ng refs/heads/main not allowed\n", None]


def test_refusal_without_sideband_is_a_plain_report():
    push = PushRequest((RefUpdate(OLD, NEW, "refs/heads/x"),), frozenset({"report-status-v2"}))
    assert parse_pkts(refusal_response(push, "no")) == [
        b"unpack ok\n",
        b"ng refs/heads/x no\n",
        None,
    ]


def test_refusal_without_report_status_is_an_err_line():
    assert parse_pkts(refusal_response(None, "no")) == [b"ERR no\n"]
