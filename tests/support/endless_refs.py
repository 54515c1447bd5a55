"""A hostile git server whose ref advertisement never ends (S14.1).

:class:`EndlessRefsServer` speaks just enough smart HTTP to look like a git server, then sends
refs forever: every ref line names a distinct ref and a distinct object id, so a client that
keeps what it reads grows without bound (dulwich's own parser keeps a dict of every ref).

``where`` picks the endless part:

* ``"ls-refs"``: protocol v2 (the client's ``Git-Protocol: version=2`` is honoured) with a short
  capability advertisement; the ``command=ls-refs`` answer is endless.
* ``"info/refs"``: the header is ignored and the v0 advertisement itself is endless.
* ``"capabilities"``: v2, but the capability advertisement never ends.

Any other request (a pack request) is answered 500. "Endless" is bounded for the test's sake:
every response stops after ``limit_bytes`` or ``limit_secs``, whichever comes first, and ends
early when the client hangs up (the write fails and the WSGI server closes the generator).
The server runs on gevent in the test process, like :class:`~tests.support.gitserver.GitServer`,
and records its requests (with the bytes each response carried) the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gevent

from tests.support.gitserver import _BaseServer

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

WHERE = ("ls-refs", "info/refs", "capabilities")
_ADVERT = "application/x-git-upload-pack-advertisement"
_RESULT = "application/x-git-upload-pack-result"
#: Refs per chunk the generator yields: about 68 KiB of pkt-lines.
_REFS_PER_CHUNK = 1000
_BUSY_SECS = 0.005
_V2_CAPABILITIES = (b"agent=git/2.43.0", b"ls-refs=unborn", b"fetch=shallow", b"server-option")


def pkt(payload: bytes) -> bytes:
    """One pkt-line: four hex digits of length (including themselves), then the payload."""
    return b"%04x" % (len(payload) + 4) + payload


def ref_lines(start: int, count: int) -> bytes:
    """``count`` ref pkt-lines ``<oid> refs/heads/r<n>``, each with its own object id."""
    return b"".join(
        pkt(b"%040x refs/heads/r%010d\n" % (n + 1, n)) for n in range(start, start + count)
    )


def capability_lines(start: int, count: int) -> bytes:
    return b"".join(pkt(b"x-chaos-%010d\n" % n) for n in range(start, start + count))


class EndlessRefsServer(_BaseServer):
    """See the module docstring."""

    def __init__(
        self,
        where: str = "ls-refs",
        *,
        host: str = "127.0.0.1",
        limit_bytes: int = 2 << 30,
        limit_secs: float = 60.0,
    ) -> None:
        if where not in WHERE:
            raise ValueError(f"where must be one of {WHERE}, not {where!r}")
        super().__init__(host)
        self.where = where
        self.limit_bytes = limit_bytes
        self.limit_secs = limit_secs

    def make_app(self) -> WSGIApp:
        return self._app

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        v2 = "version=2" in environ.get("HTTP_GIT_PROTOCOL", "") and self.where != "info/refs"
        if method == "GET" and path.endswith("/info/refs"):
            start_response("200 OK", [("Content-Type", _ADVERT), ("Cache-Control", "no-cache")])
            if not v2:
                head = pkt(b"# service=git-upload-pack\n") + b"0000"
                first = pkt(b"%040x HEAD\x00multi_ack side-band-64k ofs-delta\n" % 1)
                return self._endless(head + first, ref_lines)
            head = pkt(b"version 2\n")
            if self.where == "capabilities":
                return self._endless(head, capability_lines)
            return [head + b"".join(pkt(c + b"\n") for c in _V2_CAPABILITIES) + b"0000"]
        if method == "POST" and path.endswith("/git-upload-pack"):
            body = environ["wsgi.input"].read()
            if b"command=ls-refs" in body:
                start_response("200 OK", [("Content-Type", _RESULT)])
                return self._endless(b"", ref_lines)
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"chaos: no packs here\n"]

    def _endless(self, head: bytes, lines: Callable[[int, int], bytes]) -> Iterator[bytes]:
        """``head``, then chunk after chunk of ``lines`` until a limit is reached.

        Loopback socket buffers take megabytes before a send would block, so this greenlet
        could hold the test process's hub that long; it pauses every :data:`_BUSY_SECS`.
        """
        deadline = time.monotonic() + self.limit_secs
        sent, n, busy_since = len(head), 0, time.monotonic()
        yield head
        while sent < self.limit_bytes and (now := time.monotonic()) < deadline:
            if now - busy_since >= _BUSY_SECS:
                gevent.sleep(0.001)  # a real sleep: the loop polls I/O before this resumes
                busy_since = time.monotonic()
            chunk = lines(n, _REFS_PER_CHUNK)
            n += _REFS_PER_CHUNK
            sent += len(chunk)
            yield chunk
