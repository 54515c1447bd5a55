"""Git remotes for the end-to-end tier: counting what each server saw, and faults on demand.

A sync attempt talks to one URL in one fetch exchange. With protocol v2 over smart HTTP
(what dulwich speaks to ``git http-backend``) that exchange is three HTTP requests:

* ``GET  …/info/refs?service=git-upload-pack`` — the capability advertisement,
* ``POST …/git-upload-pack`` with ``command=ls-refs`` — the ref listing,
* ``POST …/git-upload-pack`` with ``command=fetch`` — the wants, answered with the pack.

A v0 server has no ``ls-refs``: its advertisement lists the refs, and every upload-pack POST
asks for a pack. :class:`GitRequests` counts those three kinds per server, so "one request per
URL per sync attempt" reads as *one advertisement and one pack request per attempt*.

Counting sources: a :class:`~tests.support.gitserver.GitServer` wrapped with
:func:`command_recorder` knows the v2 command of each POST (it peeks at the request body);
a relay process only has its access log (``grasp.relay.access`` at DEBUG), where a v2 POST
could be either command — :func:`relay_git_requests` reports them as ``posts`` only.

Faults are WSGI wraps for ``GitServer(root, wrap=...)``: :class:`Outage` (503 while down,
switchable), :func:`stall_first_pack` (the first pack response stops part-way until
released, later ones are served normally — a fetch that is surely in flight when the test
acts) and :func:`gate_first_pack` (the first pack request is answered, in full, only once
released — a slow remote that keeps its domain's slot busy).
"""

from __future__ import annotations

import gzip
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gevent.event import Event

from tests.support.gitchaos import STALL_LIMIT_SECS
from tests.support.gitserver import RequestRecord, V0OnlyServer, _BaseServer

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Wrap = Callable[[WSGIApp], WSGIApp]

UPLOAD_PACK = "git-upload-pack"


# --- counting ------------------------------------------------------------------------------


@dataclass
class GitRequests:
    """What one remote saw of upload-pack traffic (pushes and other paths are not counted)."""

    adverts: int = 0  # GET info/refs?service=git-upload-pack
    posts: int = 0  # POST git-upload-pack, whatever the command
    ls_refs: int | None = None  # v2 command=ls-refs POSTs (None: the server cannot tell)
    fetches: int | None = None  # pack requests (v2 command=fetch, or any v0 POST)
    failed: int = 0  # answered with a status other than 200, or the server failed mid-answer
    v0_only: bool = False  # the server speaks protocol v0: every POST is a pack request

    @property
    def total(self) -> int:
        return self.adverts + self.posts

    def __str__(self) -> str:
        parts = [f"{self.adverts} GET info/refs"]
        if self.v0_only and self.fetches is not None:
            parts.append(f"{self.fetches} POST pack request (v0)")
        elif self.ls_refs is not None and self.fetches is not None:
            parts += [f"{self.ls_refs} POST ls-refs", f"{self.fetches} POST fetch"]
        else:
            parts.append(f"{self.posts} POST upload-pack")
        text = " + ".join(parts)
        return f"{text} ({self.failed} failed)" if self.failed else text


@dataclass
class CommandLog:
    """The upload-pack POSTs a server received, in order: ``"ls-refs"``, ``"fetch"`` or ``"v0"``."""

    commands: list[str] = field(default_factory=list)


def command_recorder(log: CommandLog) -> Wrap:
    """A wrap that records the v2 command of every upload-pack POST (the body is replayed)."""

    def wrap(app: WSGIApp) -> WSGIApp:
        def recorder(
            environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").endswith(
                UPLOAD_PACK
            ):
                body = environ["wsgi.input"].read()
                environ["wsgi.input"] = _Replay(body)
                log.commands.append(_command_of(body, environ.get("HTTP_CONTENT_ENCODING", "")))
            return app(environ, start_response)

        return recorder

    return wrap


def _command_of(body: bytes, encoding: str) -> str:
    if encoding.lower() == "gzip":
        body = gzip.decompress(body)
    match = re.search(rb"command=([a-z-]+)", body[:200])
    return match.group(1).decode() if match else "v0"


class _Replay:
    """A consumed request body, readable again by the wrapped app."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else self._pos + size
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk


def server_git_requests(server: _BaseServer, commands: CommandLog | None = None) -> GitRequests:
    """Tally a test server's request log (and its command log, when it has one)."""
    tally = GitRequests()
    for record in server.requests:
        if record.service != UPLOAD_PACK:
            continue
        if record.method == "GET":
            tally.adverts += 1
        elif record.method == "POST":
            tally.posts += 1
        tally.failed += record.raised or not record.status.startswith("200")
    if isinstance(server, V0OnlyServer):
        tally.v0_only, tally.ls_refs, tally.fetches = True, 0, tally.posts
    elif commands is not None:
        tally.ls_refs = commands.commands.count("ls-refs")
        tally.fetches = commands.commands.count("fetch") + commands.commands.count("v0")
    return tally


def pack_requests(server: _BaseServer, commands: CommandLog) -> list[RequestRecord]:
    """The request records of the pack requests (v2 ``command=fetch``), in arrival order."""
    posts = [r for r in server.requests if r.method == "POST" and r.service == UPLOAD_PACK]
    return [
        record
        for record, command in zip(posts, commands.commands, strict=True)
        if command in ("fetch", "v0")
    ]


_ACCESS = re.compile(r'"(GET|POST) (\S+) HTTP/[\d.]+" (\d{3})')


def relay_git_requests(log: str) -> GitRequests:
    """Tally the upload-pack requests in a relay's access log (``--log-level DEBUG``)."""
    tally = GitRequests()
    for line in log.splitlines():
        if "grasp.relay.access" not in line:
            continue
        match = _ACCESS.search(line)
        if match is None:
            continue
        method, target, status = match.groups()
        if method == "GET" and target.endswith(f"/info/refs?service={UPLOAD_PACK}"):
            tally.adverts += 1
        elif method == "POST" and target.endswith(f"/{UPLOAD_PACK}"):
            tally.posts += 1
        else:
            continue
        tally.failed += status != "200"
    return tally


# --- faults --------------------------------------------------------------------------------


class Outage:
    """A switchable outage: while ``down``, every request is answered ``503``.

    ``GitServer(root, wrap=outage)``; set ``outage.down = False`` to recover.
    """

    def __init__(self, down: bool = True) -> None:
        self.down = down

    def __call__(self, app: WSGIApp) -> WSGIApp:
        def maybe_down(
            environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            if not self.down:
                return app(environ, start_response)
            body = b"outage: service unavailable\n"
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
            )
            return [body]

        return maybe_down


def stall_first_pack(started: Event, release: Event, after_bytes: int = 0) -> Wrap:
    """The first pack response sends ``after_bytes`` bytes, then nothing more until ``release``
    is set (``started`` is set when it goes silent), so the client's fetch is surely in flight
    and, with ``after_bytes``, part of a pack has reached it. Later pack requests are served
    normally. Set ``release`` before the test ends: the stalled response then just stops.
    """

    def wrap(app: WSGIApp) -> WSGIApp:
        stalled = False

        def chaos(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            nonlocal stalled
            if stalled or not _is_pack_request(environ):
                return app(environ, start_response)
            stalled = True
            inner = app(environ, start_response)

            def hang() -> Iterator[bytes]:
                sent = 0
                try:
                    for chunk in inner:
                        if sent + len(chunk) >= after_bytes:
                            yield chunk[: after_bytes - sent]
                            break
                        sent += len(chunk)
                        yield chunk
                    started.set()
                    release.wait(STALL_LIMIT_SECS)
                finally:
                    getattr(inner, "close", lambda: None)()

            return hang()

        return chaos

    return wrap


def gate_first_pack(started: Event, release: Event) -> Wrap:
    """The first pack request waits for ``release`` before it is served (``started`` is set
    when it begins waiting), then gets its whole answer: a slow server, not a broken one.
    Later pack requests are served at once."""

    def wrap(app: WSGIApp) -> WSGIApp:
        gated = False

        def gate(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            nonlocal gated
            if not gated and _is_pack_request(environ):
                gated = True
                started.set()
                release.wait(STALL_LIMIT_SECS)
            return app(environ, start_response)

        return gate

    return wrap


def _is_pack_request(environ: dict[str, Any]) -> bool:
    if environ.get("REQUEST_METHOD") != "POST" or not environ.get("PATH_INFO", "").endswith(
        UPLOAD_PACK
    ):
        return False
    body = environ["wsgi.input"].read()
    environ["wsgi.input"] = _Replay(body)
    return b"command=ls-refs" not in body


def closed_port_url(host: str, path: str) -> str:
    """``http://host:<port>/path`` on a port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    return f"http://{host}:{port}/{path}"
