"""The relay's WSGI application: one port, routed by path and headers (ARCHITECTURE §6, S10.2).

``/``: websocket upgrade -> NIP-01 session; ``Accept: application/nostr+json`` -> NIP-11; otherwise
a small HTML page. Every other path goes to a *mount*: git smart HTTP under
``/<npub>/<identifier>.git/...``, ``/metrics``, ``/status`` and ``/status.json`` are reserved and
answer 404 until the process wiring mounts an application there (``RelayApp(mounts=...)`` or
:meth:`RelayApp.mount`). A mount key is a path prefix (matching the path itself and everything
below it) or a predicate on the path; the mounted app gets the unchanged environ.

CORS (NIP-11 requires it, browsers need it for git too): every response carries
``Access-Control-Allow-Origin: *`` and friends, mounted apps included, and ``OPTIONS`` on any path
is a ``204`` preflight answer (GRASP-01 L64-L67, S15.3).
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from grasp.relay.transport.connection import ListenerFactory, WebSocketLimits
from grasp.relay.transport.websocket import UPGRADE_KEY, handshake_error, is_websocket_request

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]
PathMatcher = Callable[[str], bool]
MountKey = str | PathMatcher

NOSTR_JSON = "application/nostr+json"
_GIT_PATH = re.compile(r"/npub1[02-9ac-hj-np-z]{58}/[^/]+\.git(/.*)?")


def git_repository_path(path: str) -> bool:
    """Mount matcher for ``/<npub>/<identifier>.git`` and everything below it (S10.5)."""
    return _GIT_PATH.fullmatch(path) is not None


#: Where later parts plug in; unmounted, each answers 404.
GIT_MOUNT: MountKey = git_repository_path
#: GRASP-06 contributor PRs (S16.1): mounted only with ``--grasp06``.
PRS_MOUNT = "/prs"
METRICS_MOUNT = "/metrics"
STATUS_MOUNT = "/status"
STATUS_JSON_MOUNT = "/status.json"

#: S15.3, GRASP-01 L66: the request headers are *named*. A browser never lets ``*`` cover
#: ``Authorization``, and browser git clients send ``Git-Protocol`` (protocol v2) and
#: ``Content-Encoding`` (gzipped RPC bodies) on cross-origin requests, so each is listed.
ALLOWED_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Git-Protocol",
    "Accept",
    "Content-Encoding",
    "X-Requested-With",
)
#: What a browser git client reads of an answer beyond the CORS-safelisted headers.
EXPOSED_RESPONSE_HEADERS = ("Content-Type", "Content-Length", "Content-Encoding", "Cache-Control")

CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS"),
    ("Access-Control-Allow-Headers", ", ".join(ALLOWED_REQUEST_HEADERS)),
    ("Access-Control-Expose-Headers", ", ".join(EXPOSED_RESPONSE_HEADERS)),
)


def _with_cors(start_response: StartResponse) -> StartResponse:
    """Wrap start_response so every response, mounted apps' too, carries the CORS headers."""

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        present = {name.lower() for name, _ in headers}
        extra = [(name, value) for name, value in CORS_HEADERS if name.lower() not in present]
        return start_response(status, list(headers) + extra, exc_info)

    return start


def _prefix_matcher(prefix: str) -> PathMatcher:
    prefix = prefix.rstrip("/") or "/"
    return lambda path: path == prefix or path.startswith(prefix + "/")


def wants_nostr_json(environ: Mapping[str, Any]) -> bool:
    """Whether the Accept header lists ``application/nostr+json`` (parameters ignored)."""
    accept = str(environ.get("HTTP_ACCEPT", ""))
    return any(part.split(";")[0].strip().lower() == NOSTR_JSON for part in accept.split(","))


class RelayApp:
    """The WSGI entry point of the relay process."""

    def __init__(
        self,
        *,
        info: Mapping[str, Any],
        session_factory: ListenerFactory,
        websocket_limits: WebSocketLimits = WebSocketLimits(),
        mounts: Mapping[MountKey, WSGIApp] | None = None,
    ) -> None:
        self._info_json = json.dumps(dict(info), ensure_ascii=False).encode("utf-8")
        self._info = dict(info)
        self._session_factory = session_factory
        self._limits = websocket_limits
        self._mounts: list[tuple[PathMatcher, WSGIApp]] = []
        for key, app in (mounts or {}).items():
            self.mount(key, app)

    def mount(self, key: MountKey, app: WSGIApp) -> None:
        """Serve ``app`` at a path prefix (str)
        or wherever ``key(path)`` is true; first match wins."""
        matcher = _prefix_matcher(key) if isinstance(key, str) else key
        self._mounts.append((matcher, app))

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        start = _with_cors(start_response)
        path = environ.get("PATH_INFO") or "/"
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            return _respond(
                environ, start, "204 No Content", b"", [("Access-Control-Max-Age", "86400")]
            )
        if path == "/":
            return self._root(environ, start)
        for matches, app in self._mounts:
            if matches(path):
                return app(environ, start)
        return _respond(
            environ, start, "404 Not Found", b"not found\n", [("Content-Type", "text/plain")]
        )

    def _root(self, environ: dict, start: StartResponse) -> Iterable[bytes]:
        if is_websocket_request(environ):
            return self._upgrade(environ, start)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _respond(
                environ,
                start,
                "405 Method Not Allowed",
                b"method not allowed\n",
                [("Content-Type", "text/plain"), ("Allow", "GET, HEAD, OPTIONS")],
            )
        if wants_nostr_json(environ):
            return _respond(
                environ,
                start,
                "200 OK",
                self._info_json,
                [("Content-Type", NOSTR_JSON), ("Vary", "Accept")],
            )
        page = self._html(environ).encode("utf-8")
        return _respond(
            environ,
            start,
            "200 OK",
            page,
            [("Content-Type", "text/html; charset=utf-8"), ("Vary", "Accept")],
        )

    def _upgrade(self, environ: dict, start: StartResponse) -> Iterable[bytes]:
        upgrade = environ.get(UPGRADE_KEY)
        if upgrade is None:
            return _respond(
                environ,
                start,
                "501 Not Implemented",
                b"this server cannot upgrade to websocket\n",
                [("Content-Type", "text/plain")],
            )
        error = handshake_error(environ)
        if error is not None:
            return _respond(
                environ,
                start,
                "400 Bad Request",
                f"{error}\n".encode(),
                [("Content-Type", "text/plain"), ("Sec-WebSocket-Version", "13")],
            )
        return upgrade.accept(self._session_factory, self._limits)

    def _html(self, environ: Mapping[str, Any]) -> str:
        scheme = "wss" if environ.get("wsgi.url_scheme") == "https" else "ws"
        host = (
            environ.get("HTTP_HOST")
            or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
        )
        name = html.escape(str(self._info.get("name", "relay")))
        description = html.escape(str(self._info.get("description", "")))
        nips = ", ".join(str(n) for n in self._info.get("supported_nips", []))
        grasps = ", ".join(self._info.get("supported_grasps", []))
        url = html.escape(f"{scheme}://{host}/")
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{name}</title></head>\n<body>\n<h1>{name}</h1>\n<p>{description}</p>\n"
            f"<p>This is a Nostr relay: connect a Nostr client to <code>{url}</code>.</p>\n"
            f"<p>Supported NIPs: {html.escape(nips)}. GRASP: {html.escape(grasps)}. "
            f"Version {html.escape(str(self._info.get('version', '')))}.</p>\n"
            f"<p>Relay information (NIP-11): request <code>{url.replace('ws', 'http', 1)}</code> "
            f"with <code>Accept: {NOSTR_JSON}</code>.</p>\n</body></html>\n"
        )


def _respond(
    environ: Mapping[str, Any],
    start: StartResponse,
    status: str,
    body: bytes,
    headers: list[tuple[str, str]],
) -> list[bytes]:
    """Send a complete small response; HEAD gets the headers (with the length) but no body."""
    if not status.startswith("204"):
        headers = headers + [("Content-Length", str(len(body)))]
    start(status, headers)
    return [] if environ.get("REQUEST_METHOD") == "HEAD" or status.startswith("204") else [body]
