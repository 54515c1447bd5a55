"""Ref advertisements read as a stream, under their own caps (S14.1).

A fetch starts with the server's ref advertisement: the v0 ``info/refs`` reply, or in protocol
v2 the capability advertisement and the ``ls-refs`` answer.  A hostile server can make it
endless.  dulwich reads it with ``read_pkt_refs_v1`` / ``read_pkt_refs_v2`` (and the v2
capabilities with ``read_server_capabilities``), which put *every* line into a dict or set
before the caller sees any; a counting reader wrapped around the body could stop the stream,
but everything up to the cap would still be held (about 2.8x the bytes received).  So the
advertisement is parsed here instead, one pkt-line at a time, and each ref is offered to a
:data:`RefFilter` that decides whether it is kept: ``fetch.py`` keeps none for its first,
fixed wants and only the tips the target lacks for its fallback.  Memory then follows what is
kept, never what was sent.

Bounds: :class:`AdvertBudget` counts the bytes of the whole advertisement (info/refs and
``ls-refs`` together) and the refs it lists; past ``AdvertLimits`` it raises :class:`TooLarge`,
which the fetch reports as ``FetchError(too_large)``.  The v2 capability list is capped at
:data:`MAX_CAPABILITY_BYTES`, what one v0 first line can carry.  Malformed or truncated input
raises :class:`AdvertisementError` (``FetchError(protocol)``).  For an ordinary advertisement
and a filter that keeps everything, the result equals dulwich's (``tests/git/test_advert.py``).

The body is read in blocks of up to :data:`BLOCK_BYTES` with a ``read_some`` that returns what
has arrived (urllib3's ``read1``), so parsing costs one call per block, not two per line; the
injected ``pause`` (the fetch's hub yield, S7.4) runs between blocks and every
:data:`PAUSE_EVERY_REFS` refs, so a fast server cannot keep the hub busy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from dulwich.errors import GitProtocolError
from dulwich.objects import ObjectID
from dulwich.refs import Ref

from grasp.git.errors import TooLarge

logger = logging.getLogger(__name__)

#: The largest pkt-line git allows (``LARGE_PACKET_MAX``): 4 bytes of length + 65516 of payload.
MAX_PKT_BYTES = 65520
#: Cap on the v2 capability advertisement (honest servers send a few hundred bytes).
MAX_CAPABILITY_BYTES = MAX_PKT_BYTES
BLOCK_BYTES = 64 * 1024
PAUSE_EVERY_REFS = 1024

PEELED_SUFFIX = b"^{}"
CAPABILITIES_REF = b"capabilities^{}"
_LENGTH = re.compile(rb"[0-9a-fA-F]{4}")
_OID = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}")

#: Decides, ref by ref, what the parser keeps: ``(ref, sha) -> keep?`` (sha None: unborn).
RefFilter = Callable[[Ref, ObjectID | None], bool]


def keep_all(ref: Ref, sha: ObjectID | None) -> bool:
    return True


def keep_none(ref: Ref, sha: ObjectID | None) -> bool:
    return False


def under_prefixes(keep: RefFilter, prefixes: Sequence[bytes] | None) -> RefFilter:
    """``keep``, limited to refs under ``prefixes`` (v2 servers filter themselves; v0 not)."""
    if prefixes is None:
        return keep
    starts = tuple(prefixes)
    return lambda ref, sha: ref.startswith(starts) and keep(ref, sha)


class AdvertisementError(GitProtocolError):
    """The advertisement is malformed or ended early."""


@dataclass(frozen=True)
class AdvertLimits:
    """S14.1 caps of one advertisement (``--fetch-max-advertisement-bytes``, ``--fetch-max-refs``):
    bytes of info/refs and ``ls-refs`` together, and refs listed."""

    max_bytes: int = 32 << 20
    max_refs: int = 500_000

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_refs <= 0:
            raise ValueError(f"AdvertLimits must be positive: {self}")


class AdvertBudget:
    """Bytes and refs of one advertisement so far, against its :class:`AdvertLimits`."""

    def __init__(self, limits: AdvertLimits, pause: Callable[[], None] = lambda: None) -> None:
        self.limits = limits
        self.pause = pause
        self.received = 0
        self.refs = 0

    def charge(self, nbytes: int) -> None:
        self.received += nbytes
        if self.received > self.limits.max_bytes:
            raise TooLarge(f"ref advertisement larger than {self.limits.max_bytes} bytes")
        self.pause()

    def count_ref(self) -> None:
        self.refs += 1
        if self.refs > self.limits.max_refs:
            raise TooLarge(f"ref advertisement lists more than {self.limits.max_refs} refs")
        if self.refs % PAUSE_EVERY_REFS == 0:
            self.pause()


class PktReader:
    """pkt-lines from a response body, read in blocks and charged to an :class:`AdvertBudget`."""

    def __init__(self, read_some: Callable[[int], bytes], budget: AdvertBudget) -> None:
        self._read_some = read_some
        self.budget = budget
        self._buf = b""
        self._pos = 0

    def read_pkt(self) -> bytes | None:
        """The next payload; None for a flush-pkt or delim-pkt (either ends a section)."""
        if len(self._buf) - self._pos < 4:
            self._fill(4, "a pkt-line")
        pos = self._pos
        head = self._buf[pos : pos + 4]
        if not _LENGTH.fullmatch(head):
            raise AdvertisementError(f"malformed pkt-line length {head!r}")
        size = int(head, 16)
        if size < 4:
            if size > 1:  # 0002 response-end and 0003 have no place in an advertisement
                raise AdvertisementError(f"invalid pkt-line length {head.decode('ascii')}")
            self._pos = pos + 4
            return None
        if size > MAX_PKT_BYTES:
            raise AdvertisementError(f"invalid pkt-line length {head.decode('ascii')}")
        if len(self._buf) - pos < size:
            self._fill(size, f"a pkt-line of {size} bytes")
            pos = self._pos
        self._pos = pos + size
        return self._buf[pos + 4 : pos + size]

    def section(self) -> Iterator[bytes]:
        """Payloads up to the next flush-pkt or delim-pkt."""
        while (payload := self.read_pkt()) is not None:
            yield payload

    def _fill(self, need: int, what: str) -> None:
        while len(self._buf) - self._pos < need:
            chunk = self._read_some(BLOCK_BYTES)
            if not chunk:
                raise AdvertisementError(f"advertisement truncated: the stream ended inside {what}")
            self.budget.charge(len(chunk))
            self._buf = self._buf[self._pos :] + chunk
            self._pos = 0


@dataclass
class Advertisement:
    """What was kept of an advertisement, in the shapes dulwich's fetch_pack expects."""

    refs: dict[Ref, ObjectID | None] = field(default_factory=dict)
    capabilities: set[bytes] = field(default_factory=set)
    symrefs: dict[Ref, Ref] = field(default_factory=dict)
    peeled: dict[Ref, ObjectID] = field(default_factory=dict)


def _oid(sha: bytes, line: bytes) -> ObjectID:
    if not _OID.fullmatch(sha):
        raise AdvertisementError(f"malformed object id in ref line {line[:100]!r}")
    return ObjectID(sha)


def _check_err(first_word: bytes, line: bytes) -> None:
    if first_word == b"ERR":
        raise GitProtocolError(line[4:].rstrip(b"\n").decode("utf-8", "replace"))


def read_v0_refs(reader: PktReader, first: bytes | None, keep: RefFilter) -> Advertisement:
    """The v0 ref list, ``first`` being its first pkt-line (None: it was empty).

    The first line carries the capabilities after a NUL; ``<ref>^{}`` lines are the peeled
    values of the tag before them, kept when that tag was; ``capabilities^{}`` (an empty
    repository) is no ref.
    """
    advert = Advertisement()
    if first is None:
        return advert
    line: bytes | None = first
    while line is not None:
        parts = line.rstrip(b"\n").split(None, 1)
        _check_err(parts[0] if parts else b"", line)
        if len(parts) != 2:
            raise AdvertisementError(f"malformed ref line {line[:100]!r}")
        sha, ref = _oid(parts[0], line), parts[1]
        if line is first and b"\0" in ref:
            ref, caps = ref.split(b"\0", 1)
            advert.capabilities = set(caps.strip().split(b" "))
        if ref.endswith(PEELED_SUFFIX):  # counted as bytes only, as v2 has them inline
            base = Ref(ref[: -len(PEELED_SUFFIX)])
            if ref != CAPABILITIES_REF and base in advert.refs:
                advert.peeled[base] = sha
            line = reader.read_pkt()
            continue
        reader.budget.count_ref()
        if keep(Ref(ref), sha):
            advert.refs[Ref(ref)] = sha
        line = reader.read_pkt()
    advert.symrefs = _symrefs_of(advert.capabilities, advert.refs)
    return advert


def _symrefs_of(capabilities: set[bytes], kept: dict[Ref, ObjectID | None]) -> dict[Ref, Ref]:
    symrefs = {}
    for capability in capabilities:
        name, _, value = capability.partition(b"=")
        if name == b"symref" and b":" in value:
            src, dst = value.split(b":", 1)
            if src in kept:
                symrefs[Ref(src)] = Ref(dst)
    return symrefs


def read_v2_capabilities(reader: PktReader) -> set[bytes]:
    """The v2 capability advertisement after ``version 2``, capped at MAX_CAPABILITY_BYTES."""
    capabilities: set[bytes] = set()
    size = 0
    for line in reader.section():
        size += len(line) + 4
        if size > MAX_CAPABILITY_BYTES:
            raise TooLarge(f"capability advertisement larger than {MAX_CAPABILITY_BYTES} bytes")
        capabilities.add(line)
    return capabilities


def read_v2_refs(reader: PktReader, keep: RefFilter) -> Advertisement:
    """An ``ls-refs`` answer: ``<oid>|unborn <ref> [peeled:<oid>] [symref-target:<ref>]``."""
    advert = Advertisement()
    for line in reader.section():
        parts = line.rstrip(b"\n").split(b" ")
        _check_err(parts[0], line)
        if len(parts) < 2 or not parts[1]:
            raise AdvertisementError(f"malformed ls-refs line {line[:100]!r}")
        sha = None if parts[0] == b"unborn" else _oid(parts[0], line)
        ref = Ref(parts[1])
        reader.budget.count_ref()
        if not keep(ref, sha):
            continue
        advert.refs[ref] = sha
        for part in parts[2:]:
            if part.startswith(b"peeled:"):
                advert.peeled[ref] = _oid(part[7:], line)
            elif part.startswith(b"symref-target:"):
                advert.symrefs[ref] = Ref(part[14:])
            else:
                logger.debug("unknown attribute in ls-refs line: %r", part[:100])
    return advert


def read_info_refs(
    reader: PktReader, keep: RefFilter, service: bytes = b"git-upload-pack"
) -> tuple[int, Advertisement]:
    """The discovery reply: ``(0, refs)`` for v0, ``(2, capabilities only)`` for v2.

    Like git's ``check_smart_http``: a ``# service=<service>`` section (one line, then a flush)
    may come first, then either ``version 2`` or the v0 ref list.
    """
    first = reader.read_pkt()
    if first is not None and first.rstrip(b"\n") == b"# service=" + service:
        if reader.read_pkt() is not None:
            raise AdvertisementError("more than one line in the '# service=' section")
        first = reader.read_pkt()
    elif first is None or first.strip() != b"version 2":
        line = first or b""
        _check_err(line.split(b" ", 1)[0], line)
        raise AdvertisementError(f"unexpected first line {line[:100]!r}")
    if first is not None and first.strip() == b"version 2":
        return 2, Advertisement(capabilities=read_v2_capabilities(reader))
    return 0, read_v0_refs(reader, first, keep)
