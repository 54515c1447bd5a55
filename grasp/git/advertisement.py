"""Completing ``git-upload-pack`` ref advertisements so they always carry the capabilities GRASP
requires (GRASP-01 L56, S15.3).

Why this exists: git 2.39's ``upload-pack`` advertises *no capabilities at all* for an empty
repository in protocol v0 — the answer is the service line and two flush packets. Only git
2.41 and later send a ``<zero-id> capabilities^{}`` line there, the way ``receive-pack`` always
has. A client (or an audit) reading a freshly announced, still empty repository then cannot see
``allow-tip-sha1-in-want``, ``allow-reachable-sha1-in-want`` or ``filter``. A relay cannot
choose the git its operator installed, so the bridge completes the advertisement instead:

* **v0/v1, empty repository:** the bare-flush answer becomes the 2.41 form, one
  ``capabilities^{}`` line with the capability list git itself sends for a non-empty
  repository under the same ``uploadpack.*`` settings (:func:`upload_pack_capabilities`: the
  base list, the ``allow-*``/``filter`` names the settings grant, the repository's
  ``object-format`` and git's ``agent``). Any other answer is left alone.
* **v2:** the capability advertisement does not depend on the refs; git already lists
  ``filter`` in its ``fetch=`` line (``uploadpack.allowFilter``). The two ``allow-*`` names are
  v0 capabilities that v2 makes moot (a v2 ``want`` may name any object), so the ones the
  settings grant are appended as capability lines of their own: v2 clients ignore capabilities
  they do not know (git 2.39 and dulwich clone through it, tests/git/test_advertisement.py) and
  a reader of the advertisement sees what the relay grants.

Only what the repository's configuration really grants is ever added, so the bridge stays
truthful for the test servers that serve without these settings. Everything here is a pure
function except :func:`upload_pack_capabilities`, which asks git for its version and the
repository's object format.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "REQUIRED_CAPABILITIES",
    "V0_CAPABILITIES",
    "awaiting",
    "complete_v0_advertisement",
    "complete_v2_advertisement",
    "granted",
    "pkt_line",
    "upload_pack_capabilities",
]

FLUSH = b"0000"
ZERO_ID = "0" * 40
#: What GRASP-01 L56 (and the relay's ``uploadpack.allowFilter``) promise every client.
REQUIRED_CAPABILITIES = ("allow-tip-sha1-in-want", "allow-reachable-sha1-in-want", "filter")
#: git 2.39's v0 upload-pack capabilities, in git's order, each with the ``uploadpack.*``
#: settings of which one must be true for git to send it (``()``: always sent). ``symref=`` is
#: left out: an empty repository's HEAD names no existing branch.
V0_CAPABILITIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("multi_ack", ()),
    ("thin-pack", ()),
    ("side-band", ()),
    ("side-band-64k", ()),
    ("ofs-delta", ()),
    ("shallow", ()),
    ("deepen-since", ()),
    ("deepen-not", ()),
    ("deepen-relative", ()),
    ("no-progress", ()),
    ("include-tag", ()),
    ("multi_ack_detailed", ()),
    ("allow-tip-sha1-in-want", ("allowtipsha1inwant", "allowanysha1inwant")),
    ("allow-reachable-sha1-in-want", ("allowreachablesha1inwant", "allowanysha1inwant")),
    ("no-done", ()),
    ("filter", ("allowfilter",)),
)
#: v0 names a v2 advertisement gets as lines of their own (``filter`` comes with ``fetch=``).
V2_EXTRA = ("allow-tip-sha1-in-want", "allow-reachable-sha1-in-want")


def granted(config: Mapping[str, str]) -> list[str]:
    """The v0 capability names git would send under ``config`` (``uploadpack.*`` keys)."""
    enabled = {
        key.lower().removeprefix("uploadpack.")
        for key, value in config.items()
        if key.lower().startswith("uploadpack.") and value.lower() in ("true", "1", "yes", "on")
    }
    return [name for name, needs in V0_CAPABILITIES if not needs or enabled & set(needs)]


def pkt_line(payload: bytes) -> bytes:
    return b"%04x" % (len(payload) + 4) + payload


def _service_line(service: str) -> bytes:
    return pkt_line(f"# service={service}\n".encode("ascii"))


def complete_v0_advertisement(body: bytes, capabilities: Iterable[str]) -> bytes | None:
    """The 2.41 form of an *empty* repository's v0 advertisement, or None to keep ``body``.

    ``body`` is the whole ``info/refs`` answer. Only the exact capability-less answer of an
    older git (service line, flush, flush) is rewritten; an advertisement with refs or with
    its own ``capabilities^{}`` line already carries git's capabilities.
    """
    empty = _service_line("git-upload-pack") + FLUSH + FLUSH
    if body != empty:
        return None
    line = f"{ZERO_ID} capabilities^{{}}\0{' '.join(capabilities)}\n".encode("ascii")
    return _service_line("git-upload-pack") + FLUSH + pkt_line(line) + FLUSH


def complete_v2_advertisement(body: bytes, extra: Iterable[str]) -> bytes | None:
    """``body`` (a v2 capability advertisement) with the ``extra`` capability lines it lacks
    appended before its closing flush; None when ``body`` is not one or lacks nothing."""
    lines = _pkt_lines(body)
    if lines is None or not lines or lines[0] != b"version 2\n" or lines[-1] is not None:
        return None
    present = {line.rstrip(b"\n").split(b"=", 1)[0] for line in lines if line is not None}
    missing = [name for name in extra if name.encode("ascii") not in present]
    if not missing:
        return None
    added = b"".join(pkt_line(f"{name}\n".encode("ascii")) for name in missing)
    return body[: -len(FLUSH)] + added + FLUSH


def awaiting(body: bytes, *, v2: bool, limit: int) -> bool:
    """Whether the advertisement read so far (``body``) may still need completing, so the
    bridge should read on before sending: v0 while ``body`` is a proper prefix of the empty
    answer; v2 while it is unfinished pkt-lines (no closing flush yet) under ``limit`` bytes."""
    if not v2:
        empty = _service_line("git-upload-pack") + FLUSH + FLUSH
        return len(body) < len(empty) and empty.startswith(body)
    head = pkt_line(b"version 2\n")
    if len(body) >= limit or not (head.startswith(body) or body.startswith(head)):
        return False
    lines = _pkt_lines(body, partial=True)
    return lines is not None and None not in lines


def _pkt_lines(body: bytes, partial: bool = False) -> list[bytes | None] | None:
    """Split ``body`` into pkt-line payloads (None for a flush); None if it is not pkt-lines.

    With ``partial`` an unfinished last line is dropped instead (``body`` is still arriving).
    """
    lines: list[bytes | None] = []
    offset = 0
    while offset < len(body):
        if partial and len(body) - offset < 4:
            return lines
        try:
            length = int(body[offset : offset + 4], 16)
        except ValueError:
            return None
        if length == 0:
            lines.append(None)
            offset += 4
            continue
        if length < 4:
            return None
        if offset + length > len(body):
            return lines if partial else None
        lines.append(body[offset + 4 : offset + length])
        offset += length
    return lines


def upload_pack_capabilities(repo_path: Path, config: Mapping[str, str]) -> list[str]:
    """The v0 capabilities :func:`granted` by ``config``, with this repository's
    ``object-format`` and git's ``agent`` (what git 2.41 sends for an empty repository)."""
    return [
        *granted(config),
        f"object-format={_object_format(repo_path)}",
        f"agent=git/{git_version()}",
    ]


@functools.lru_cache(maxsize=1)
def git_version() -> str:
    """The installed git's version (``2.39.5``), as its ``agent=`` capability names it."""
    out = subprocess.run(["git", "version"], check=True, capture_output=True, text=True).stdout
    return out.strip().rsplit(" ", 1)[-1]


def _object_format(repo_path: Path) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(repo_path), "rev-parse", "--show-object-format"],
        capture_output=True,
        text=True,
    )
    fmt = done.stdout.strip() if done.returncode == 0 else ""
    return fmt or "sha1"
