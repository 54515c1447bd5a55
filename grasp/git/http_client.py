"""HTTP client for remote fetches: dulwich's urllib3 client, pinned, bounded and observable.

* every request goes through a :class:`~grasp.git.pinned_pool.PinnedPoolManager`
  (:mod:`grasp.git.pinned_pool`): connections only to the address the URL policy checked (S3.4).
* :class:`GraspHttpGitClient` is dulwich's ``Urllib3HttpGitClient`` with five changes:
  non-200 statuses raise :class:`HttpStatusError` carrying the status (dulwich folds them into a
  message string); a discovery reply that is not smart HTTP is refused (dulwich would fall back
  to the "dumb" protocol, which downloads objects one by one into memory); the ref
  advertisement (info/refs and v2 ``ls-refs``) is parsed as a stream under its own caps,
  keeping only the refs the attempt's :data:`~grasp.git.advert.RefFilter` wants (S14.1, see
  ``advert.py``); every byte read from any response is charged to a :class:`ByteBudget` (the
  S7.2 size cap) that yields to the gevent hub regularly; and the first bytes of each POST
  response are kept, because dulwich reports a refused ``want`` as a bare "remote server
  unexpectedly closed the connection" although the server named the object in an ``ERR``
  pkt-line (see :func:`refused_oids`); and a protocol-v2 ``fetch`` asks for ``ofs-delta`` and
  ``no-progress`` as git's fetch-pack does (:func:`with_fetch_arguments`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urljoin

import gevent
from dulwich.client import (
    Urllib3HttpGitClient,
    build_ls_refs_request_v2,
    extract_object_format_from_capabilities,
)
from dulwich.errors import GitProtocolError
from dulwich.objects import ObjectID
from dulwich.protocol import CAPABILITY_NO_PROGRESS, pkt_line
from dulwich.refs import Ref

from grasp.git.advert import (
    AdvertBudget,
    Advertisement,
    AdvertLimits,
    PktReader,
    RefFilter,
    keep_all,
    keep_none,
    read_info_refs,
    read_v2_refs,
    under_prefixes,
)
from grasp.git.errors import TooLarge
from grasp.git.pinned_pool import PinnedPoolManager

logger = logging.getLogger(__name__)

_HEAD_KEEP = 8 * 1024
#: How long a fetch pauses each ``ByteBudget.yield_interval``: enough for one loop iteration.
PAUSE_SECS = 0.001
_ERR_OID = re.compile(rb"\b([0-9a-f]{40})\b")
#: Arguments git 2.39's fetch-pack sends with every v2 ``fetch`` that dulwich 1.2 leaves out.
#: Without ``ofs-delta`` the server names every delta base by its 20-byte id instead of a
#: 1-3 byte offset: the 2,000-commit history came as 3.57 MB instead of git's 3.48 MB (P5,
#: issue 16).  Without ``no-progress`` it also sends its counting and compressing progress.
#: Both the in-process indexer (small_pack) and ``git index-pack`` read offset deltas.
V2_FETCH_ARGUMENTS = (b"ofs-delta\n", b"no-progress\n")
_V2_FETCH_COMMAND = pkt_line(b"command=fetch\n")
_DELIM = b"0001"


#: What dulwich's ``_discover_references`` returns: refs, capabilities, base URL, symrefs, peeled.
Discovered = tuple[dict[Ref, ObjectID | None], set[bytes], str, dict[Ref, Ref], dict[Ref, ObjectID]]

__all__ = [
    "ByteBudget",
    "GraspHttpGitClient",
    "HttpStatusError",
    "TooLarge",
    "refused_oids",
]


class NotSmartHttp(GitProtocolError):
    """The server answered the discovery request without a smart-HTTP content type."""


class HttpStatusError(GitProtocolError):
    """A non-200 HTTP status, kept as a number so callers need not parse messages."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(f"HTTP {status} for {url}")
        self.url = url
        self.status = status


class ByteBudget:
    """Counts bytes received by one fetch, enforces the cap and keeps the hub responsive.

    A fast server keeps the socket readable, so gevent never has to wait and the parsing
    greenlet could run for seconds without a switch; ``charge`` therefore yields to the hub at
    least every ``yield_interval`` seconds (S7.4).  The yield is a real sleep of
    :data:`PAUSE_SECS`, not ``gevent.sleep(0)``: a zero sleep may resume this greenlet before the
    loop polls for I/O, and under an endless advertisement that starved accepting and reading
    client connections for about a second at a time (NIP-11 and REQ answers of 1.0-1.1 s,
    measured; S14.1 allows 1 s).
    """

    def __init__(self, max_bytes: int, *, yield_interval: float = 0.02) -> None:
        self.max_bytes = max_bytes
        self.received = 0
        self._yield_interval = yield_interval
        self._last_yield = time.monotonic()

    def charge(self, nbytes: int) -> None:
        self.received += nbytes
        if self.received > self.max_bytes:
            raise TooLarge(f"received more than {self.max_bytes} bytes")
        self.pause()

    def pause(self) -> None:
        """Yield to the hub if ``yield_interval`` passed since the last yield."""
        now = time.monotonic()
        if now - self._last_yield >= self._yield_interval:
            gevent.sleep(PAUSE_SECS)
            self._last_yield = time.monotonic()


class _ResponseTap:
    """Wraps a response's read function: charges the budget and keeps the first bytes.

    Called as ``tap(n)`` it is dulwich's ``read`` (exactly ``n`` bytes unless the body ends);
    ``tap.read_some(n)`` returns what has arrived, up to ``n`` (urllib3's ``read1``), for the
    advertisement parser, which must not wait for a block the server never completes.
    """

    def __init__(
        self, resp: Any, read: Callable[[int], bytes], budget: ByteBudget, keep: int
    ) -> None:
        self._read1 = getattr(resp, "read1", read)
        self._read = read
        self._budget = budget
        self._keep = keep
        self.head = b""

    def __call__(self, size: int) -> bytes:
        return self._tapped(self._read(size))

    def read_some(self, size: int) -> bytes:
        return self._tapped(self._read1(size))

    def _tapped(self, data: bytes) -> bytes:
        if len(self.head) < self._keep:
            self.head += data[: self._keep - len(self.head)]
        self._budget.charge(len(data))
        return data


class GraspHttpGitClient(Urllib3HttpGitClient):
    """dulwich's HTTP client, pinned and bounded; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        pool_manager: PinnedPoolManager,
        budget: ByteBudget,
        advert_limits: AdvertLimits | None = None,
    ) -> None:
        super().__init__(base_url, pool_manager=pool_manager, config=None)
        # v0: offered on the first want line when the server advertises it (dulwich
        # intersects); v2 gets it as a fetch argument (_smart_request)
        self._fetch_capabilities.add(CAPABILITY_NO_PROGRESS)
        self.budget = budget
        self.advert_limits = advert_limits or AdvertLimits()
        self.ref_filter: RefFilter = keep_all
        self._post_taps: list[_ResponseTap] = []

    def _http_request(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        data: bytes | Iterator[bytes] | None = None,
        raise_for_status: bool = True,
    ) -> tuple[Any, Callable[[int], bytes]]:
        resp, read = super()._http_request(url, headers, data, raise_for_status=False)
        if raise_for_status and resp.status != 200:
            resp.close()
            raise HttpStatusError(url, resp.status)
        if data is None and "info/refs" in url:
            content_type = resp.headers.get("Content-Type") or ""
            if not content_type.startswith("application/x-git-"):
                resp.close()
                raise NotSmartHttp(
                    f"{url} is not a smart-HTTP git server (Content-Type {content_type!r})"
                )
        tap = _ResponseTap(resp, read, self.budget, _HEAD_KEEP if data is not None else 0)
        if data is not None:
            self._post_taps.append(tap)
        return resp, tap

    def _smart_request(
        self, service: str, url: str, data: bytes | Iterator[bytes] | None
    ) -> tuple[Any, Callable[[int], bytes]]:
        if service == "git-upload-pack" and self.protocol_version == 2 and isinstance(data, bytes):
            data = with_fetch_arguments(data, V2_FETCH_ARGUMENTS)
        return super()._smart_request(service, url, data)

    def start_attempt(self, keep: RefFilter = keep_all) -> None:
        """Forget the responses of the previous attempt; keep only the refs ``keep`` accepts."""
        self._post_taps.clear()
        self.ref_filter = keep

    def _discover_references(
        self,
        service: bytes,
        base_url: str,
        protocol_version: int | None = None,
        ref_prefix: Sequence[bytes] | None = None,
    ) -> Discovered:
        """The ref advertisement, parsed as a stream under ``advert_limits`` (S14.1).

        Replaces dulwich's method for fetches (the same requests: info/refs with
        ``Git-Protocol: version=2``, then ``ls-refs`` if the server speaks v2), returning only
        the refs ``ref_filter`` kept; anything else goes to dulwich's.
        """
        if service != b"git-upload-pack":
            return super()._discover_references(service, base_url, protocol_version, ref_prefix)
        self.protocol_version = 2 if protocol_version is None else protocol_version
        headers = {"Accept": "*/*"}
        if self.protocol_version == 2:
            headers["Git-Protocol"] = "version=2"
        budget = AdvertBudget(self.advert_limits, self.budget.pause)
        keep = under_prefixes(self.ref_filter, ref_prefix)
        tail = "info/refs?service=git-upload-pack"
        url = urljoin(base_url, tail)
        resp, read = self._http_request(url, headers)
        try:
            base_url = _redirected_base(url, resp.redirect_location, tail) or base_url
            version, advert = read_info_refs(PktReader(_read_some(read), budget), keep)
        finally:
            resp.close()
        if protocol_version is not None and version > protocol_version:
            raise GitProtocolError(f"bad Git protocol version {version} used by server")
        self.protocol_version, self.dumb = version, False
        if version == 2 and self.ref_filter is not keep_none:
            advert = self._ls_refs(base_url, advert.capabilities, budget, keep, ref_prefix)
        # With fixed wants (protocol v2 hands out any object by id, S7.1) no advertised ref is
        # kept, so ls-refs would be a request for nothing: two requests per fetch, as
        # ``git fetch <url> <oid>`` makes (P6, issue 16); the all-tips fallback still asks.
        logger.debug(
            "advertisement of %s: v%d, %d refs in %d bytes, %d kept",
            url,
            version,
            budget.refs,
            budget.received,
            len(advert.refs),
        )
        return advert.refs, advert.capabilities, base_url, advert.symrefs, advert.peeled

    def _ls_refs(
        self,
        base_url: str,
        capabilities: set[bytes],
        budget: AdvertBudget,
        keep: RefFilter,
        ref_prefix: Sequence[bytes] | None,
    ) -> Advertisement:
        """The v2 ``ls-refs`` command, built as dulwich builds it, its answer read as a stream."""
        object_format = extract_object_format_from_capabilities(capabilities)
        commands, arguments = build_ls_refs_request_v2(capabilities, object_format, ref_prefix)
        body = b"".join(
            [pkt_line(p) for p in commands] + [b"0001"] + [pkt_line(p) for p in arguments]
        )
        resp, read = self._smart_request("git-upload-pack", base_url, body + b"0000")
        try:
            advert = read_v2_refs(PktReader(_read_some(read), budget), keep)
        finally:
            resp.close()
        advert.capabilities = capabilities
        return advert

    def server_errors(self) -> list[bytes]:
        """``ERR`` and side-band error messages in this attempt's POST responses."""
        return [msg for tap in self._post_taps for msg in _error_messages(tap.head)]


def with_fetch_arguments(body: bytes, arguments: Sequence[bytes]) -> bytes:
    """A v2 ``command=fetch`` request ``body`` with ``arguments`` added first after its
    delimiter (any other request, e.g. ``ls-refs``, or an argument already there: unchanged)."""
    if not body.startswith(_V2_FETCH_COMMAND):
        return body
    pos = 0
    while pos + 4 <= len(body):  # the command's pkt-lines up to the delimiter packet
        head = body[pos : pos + 4]
        if head == _DELIM:
            break
        size = int(head, 16)
        if size < 4:  # a flush before any delimiter: not a request to extend
            return body
        pos += size
    else:
        return body
    pos += len(_DELIM)
    present = _pkt_payloads(body[pos:])
    extra = b"".join(pkt_line(arg) for arg in arguments if arg not in present)
    return body[:pos] + extra + body[pos:]


def _pkt_payloads(data: bytes) -> set[bytes]:
    """The payloads of the pkt-lines at the start of ``data``, up to its first flush."""
    payloads: set[bytes] = set()
    pos = 0
    while pos + 4 <= len(data):
        size = int(data[pos : pos + 4], 16)
        if size < 4:
            break
        payloads.add(data[pos + 4 : pos + size])
        pos += size
    return payloads


def _read_some(read: Callable[[int], bytes]) -> Callable[[int], bytes]:
    return getattr(read, "read_some", read)


def _redirected_base(url: str, location: str, tail: str) -> str | None:
    """The new base URL after a redirect of the discovery request (None: not redirected)."""
    if not location:
        return None
    if not location.endswith(tail):
        raise GitProtocolError(f"Redirected from URL {url} to URL {location} without {tail}")
    return urljoin(url, location[: -len(tail)])


def refused_oids(messages: list[bytes], candidates: set[str]) -> set[str]:
    """The candidate OIDs that the server's error messages name (e.g. "not our ref <oid>")."""
    named = {m.decode("ascii") for msg in messages for m in _ERR_OID.findall(msg)}
    return named & candidates


def _error_messages(head: bytes) -> Iterator[bytes]:
    """Parse pkt-lines from the start of a response and yield the error ones."""
    pos = 0
    while pos + 4 <= len(head):
        try:
            size = int(head[pos : pos + 4], 16)
        except ValueError:
            return
        if size < 4:  # flush / delimiter / response-end packets
            pos += 4
            continue
        payload = head[pos + 4 : pos + size]
        if payload.startswith(b"ERR "):
            yield payload[4:].rstrip(b"\n")
        elif payload[:1] == b"\x03":  # side-band channel 3: fatal error text
            yield payload[1:].rstrip(b"\n")
        pos += size
