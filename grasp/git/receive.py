"""Reading the commands of a push and refusing a push so that git shows why (S10.6).

A ``git-receive-pack`` request body starts with pkt-lines ``<old-oid> <new-oid> <ref>``, the
first one followed by NUL and the client's capabilities, then a flush packet and the pack.
Push authorisation needs only those commands, so :func:`read_push_commands` stops at the flush.

Refusing: a bare ``ERR`` pkt-line is not understood by git 2.39 once it asked for
``side-band-64k`` (it reports "protocol error: bad band #69").  :func:`refusal_response`
therefore answers the way ``git receive-pack`` itself does: the message on the progress band
(printed as ``remote: <message>``) and a report-status naming every ref as rejected (printed as
``! [remote rejected] <ref> (<message>)``), each only if the client asked for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO

_MAX_COMMANDS = 100_000
_OID = re.compile(r"[0-9a-f]{40}")
_SIDEBAND_MAX_DATA = 65515  # 65520-byte packets minus length and band byte


class MalformedPush(ValueError):
    """The request body does not start with well-formed receive-pack commands."""


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str


@dataclass(frozen=True)
class PushRequest:
    commands: tuple[RefUpdate, ...]
    capabilities: frozenset[str]


def read_push_commands(body: IO[bytes]) -> PushRequest:
    """Parse the command list at the start of a receive-pack body (the pack is not read)."""
    commands: list[RefUpdate] = []
    capabilities: frozenset[str] = frozenset()
    while True:
        line = _read_pkt(body)
        if line is None:
            break
        if len(commands) >= _MAX_COMMANDS:
            raise MalformedPush("too many ref updates")
        if not commands:
            line, _, caps = line.partition(b"\0")
            capabilities = frozenset(caps.decode("ascii", "replace").split())
        parts = line.rstrip(b"\n").split(b" ")
        if line.startswith(b"shallow "):
            continue
        if len(parts) != 3:
            raise MalformedPush(f"not a ref update: {line[:100]!r}")
        old, new, ref = (p.decode("utf-8", "replace") for p in parts)
        if not (_OID.fullmatch(old) and _OID.fullmatch(new) and ref):
            raise MalformedPush(f"not a ref update: {line[:100]!r}")
        commands.append(RefUpdate(old, new, ref))
    return PushRequest(tuple(commands), capabilities)


def refusal_response(push: PushRequest | None, message: str) -> bytes:
    """A receive-pack result body that makes git print ``message`` and reject every ref."""
    message = " ".join(message.split())  # one line, no control characters git would mangle
    if push is None or not ({"report-status", "report-status-v2"} & push.capabilities):
        return pkt_line(f"ERR {message}\n".encode())
    report = pkt_line(b"unpack ok\n")
    for command in push.commands:
        report += pkt_line(f"ng {command.ref} {message}\n".encode())
    report += b"0000"
    if "side-band-64k" not in push.capabilities:
        return report
    out = pkt_line(b"\x02" + f"{message}\n".encode())
    for start in range(0, len(report), _SIDEBAND_MAX_DATA):
        out += pkt_line(b"\x01" + report[start : start + _SIDEBAND_MAX_DATA])
    return out + b"0000"


def pkt_line(payload: bytes) -> bytes:
    return b"%04x" % (len(payload) + 4) + payload


def _read_pkt(body: IO[bytes]) -> bytes | None:
    header = body.read(4)
    if len(header) != 4:
        raise MalformedPush("truncated pkt-line header")
    try:
        size = int(header, 16)
    except ValueError:
        raise MalformedPush(f"bad pkt-line length {header!r}") from None
    if size == 0:
        return None
    if size < 4:
        raise MalformedPush(f"unexpected special packet {header!r} in the command list")
    payload = body.read(size - 4)
    if len(payload) != size - 4:
        raise MalformedPush("truncated pkt-line")
    return payload
