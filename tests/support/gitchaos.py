"""Misbehaving git servers: WSGI middlewares for ``GitServer(root, wrap=...)``.

Each function returns a ``wrap`` callable (app -> app).  They act on the pack response, i.e.
the ``POST .../git-upload-pack`` that carries the pack (in protocol v2 the ``ls-refs`` POST comes
first; it is recognised by its small request body and passed through untouched), unless said
otherwise.  Server-side pauses here simulate slow networks; tests themselves never sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gevent
from gevent.event import Event

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Wrap = Callable[[WSGIApp], WSGIApp]

#: Upper bound on how long a stalled response waits for release (server teardown sets it).
STALL_LIMIT_SECS = 30.0


def _is_pack_request(environ: dict[str, Any]) -> bool:
    """True for the upload-pack POST that asks for a pack (v0 body, or v2 ``command=fetch``)."""
    if environ.get("REQUEST_METHOD") != "POST" or not environ.get("PATH_INFO", "").endswith(
        "/git-upload-pack"
    ):
        return False
    body = environ["wsgi.input"].read()
    environ["wsgi.input"] = _Replay(body)
    return b"command=ls-refs" not in body


class _Replay:
    """A consumed request body, readable again by the wrapped app."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else self._pos + size
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk


def _closing(inner: Iterable[bytes]) -> Callable[[], None]:
    return getattr(inner, "close", lambda: None)


def stall_mid_pack(after_bytes: int, release: Event) -> Wrap:
    """Send ``after_bytes`` of the pack response, then go silent until ``release`` is set."""

    def wrap(app: WSGIApp) -> WSGIApp:
        def chaos(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if not _is_pack_request(environ):
                return app(environ, start_response)
            inner = app(environ, start_response)

            def stalled() -> Iterator[bytes]:
                sent = 0
                try:
                    for chunk in inner:
                        if sent + len(chunk) >= after_bytes:
                            yield chunk[: after_bytes - sent]
                            release.wait(STALL_LIMIT_SECS)
                            return
                        sent += len(chunk)
                        yield chunk
                finally:
                    _closing(inner)()

            return stalled()

        return chaos

    return wrap


def trickle(chunk_bytes: int, pause_secs: float) -> Wrap:
    """A live but slow server: the pack response dribbles out ``chunk_bytes`` per pause."""

    def wrap(app: WSGIApp) -> WSGIApp:
        def chaos(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if not _is_pack_request(environ):
                return app(environ, start_response)
            inner = app(environ, start_response)

            def slow() -> Iterator[bytes]:
                try:
                    for chunk in inner:
                        for i in range(0, len(chunk), chunk_bytes):
                            yield chunk[i : i + chunk_bytes]
                            gevent.sleep(pause_secs)
                finally:
                    _closing(inner)()

            return slow()

        return chaos

    return wrap


def truncate_pack(keep_fraction: float = 0.5) -> Wrap:
    """Send only the first ``keep_fraction`` of the pack response, then end it cleanly."""

    def wrap(app: WSGIApp) -> WSGIApp:
        def chaos(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if not _is_pack_request(environ):
                return app(environ, start_response)
            inner = app(environ, start_response)
            try:
                data = b"".join(inner)
            finally:
                _closing(inner)()
            return [data[: int(len(data) * keep_fraction)]]

        return chaos

    return wrap


def http_status(
    status: str = "500 Internal Server Error", *, first_n: int | None = None, after: int = 0
) -> Wrap:
    """Answer requests with ``status``: all of them, or only the first ``first_n`` (then recover),
    in either case only once ``after`` requests were served normally."""

    def wrap(app: WSGIApp) -> WSGIApp:
        served = 0

        def chaos(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            nonlocal served
            served += 1
            if served <= after or (first_n is not None and served > after + first_n):
                return app(environ, start_response)
            body = f"chaos: {status}\n".encode()
            start_response(
                status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            )
            return [body]

        return chaos

    return wrap


def redirect_to(base_url: str) -> Wrap:
    """Answer every request with ``302 Found`` to the same path and query on ``base_url``."""

    def wrap(app: WSGIApp) -> WSGIApp:
        def chaos(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            query = environ.get("QUERY_STRING", "")
            location = (
                base_url.rstrip("/") + environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
            )
            start_response("302 Found", [("Location", location), ("Content-Length", "0")])
            return [b""]

        return chaos

    return wrap


def chain(*wraps: Wrap) -> Wrap:
    """Apply several wraps; the first one listed sees the request first."""

    def wrap(app: WSGIApp) -> WSGIApp:
        for inner in reversed(wraps):
            app = inner(app)
        return app

    return wrap


def protocol_v0_only() -> Wrap:
    """Drop the client's ``Git-Protocol`` header, as an old server or a proxy would: git then
    speaks v0, where unadvertised wants are refused with "not our ref <oid>"."""

    def wrap(app: WSGIApp) -> WSGIApp:
        def chaos(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            environ.pop("HTTP_GIT_PROTOCOL", None)
            return app(environ, start_response)

        return chaos

    return wrap
