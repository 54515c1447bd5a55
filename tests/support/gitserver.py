"""Git smart-HTTP servers for tests: the real ``git http-backend`` behind our WSGI bridge.

Usage::

    with GitServer(root) as server:               # serves every bare repo below root
        server.configure("src.git", "allowAny")   # per-repo uploadpack mode (default "none")
        url = server.url("src.git")
        ...
        assert server.count(service="git-upload-pack", method="POST") == 1

* It is a ``gevent.pywsgi.WSGIServer`` on ``host`` (default 127.0.0.1; benchmarks bind
  127.0.0.2..127.0.0.11) and port 0, running :func:`grasp.git.http_backend.make_git_http_app`,
  so protocol v2 (``Git-Protocol`` header), gzip and chunked bodies and streamed responses are
  exactly what the relay will serve.  ``tls=(certfile, keyfile)`` serves HTTPS (see
  :func:`tests.support.gitrepo.self_signed_cert`); other keyword arguments go to the bridge
  (``before_receive_pack``, ``after_receive_pack``, ``max_request_bytes``, ``backend``).
* Every request is recorded as a :class:`RequestRecord` (time, method, path, service, Host
  header, chunked / content encoding of the body, status, bytes sent, whether the app raised)
  so tests count requests and bytes instead of guessing.
* ``end`` is the monotonic time of the last byte of the response, ``finished`` says the
  response is over (CLOCK_MONOTONIC is one clock for every process of the machine, so a
  benchmark compares it with its own times).
* ``wrap`` lets a test put middleware between the recorder and the bridge (chaos servers in
  ``tests/support/gitchaos.py`` use it).

:class:`V0OnlyServer` serves with ``dulwich.web`` instead: protocol v0 only and only advertised
wants (anything else is HTTP 500), to prove the client's fallback (python-ecosystem.md §2a,
with its three fixes).
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from gevent.pywsgi import WSGIServer

from grasp.git.http_backend import RepoTarget, directory_resolver, make_git_http_app

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: The server-side ``uploadpack.*`` configurations protocol.md §5.2 compares.
UPLOADPACK_MODES: dict[str, dict[str, str]] = {
    "none": {},
    "allowTip": {"uploadpack.allowTipSHA1InWant": "true"},
    "allowReachable": {"uploadpack.allowReachableSHA1InWant": "true"},
    "allowAny": {"uploadpack.allowAnySHA1InWant": "true"},
}


@dataclass
class RequestRecord:
    time: float
    method: str
    path: str
    service: str
    host: str
    chunked: bool = False  # the request body came with Transfer-Encoding: chunked
    content_encoding: str = ""  # of the request body, e.g. "gzip"
    status: str = ""
    bytes_sent: int = 0
    raised: bool = False  # the app failed mid-response (the client saw a broken or 500 reply)
    end: float = 0.0  # time.monotonic() when the latest body chunk was written (0: none yet)
    finished: bool = False  # the response iterable is exhausted or closed


def most_open(spans: Iterable[tuple[float, float]]) -> int:
    """The most of the ``(start, end)`` spans open at one instant: a remote's view of the
    requests it served concurrently (S6.1). At equal instants an end sorts before a start, so a
    request that begins as another ends does not count as overlapping it."""
    edges = sorted(edge for start, end in spans for edge in ((start, 1), (end, -1)))
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


class _Recorder:
    """WSGI middleware appending a RequestRecord per request and counting response bytes."""

    def __init__(self, app: WSGIApp, log: list[RequestRecord]) -> None:
        self.app = app
        self.log = log

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        service = parse_qs(environ.get("QUERY_STRING", "")).get(
            "service", [path.rsplit("/", 1)[-1]]
        )[0]
        record = RequestRecord(
            time.monotonic(),
            environ.get("REQUEST_METHOD", ""),
            path,
            service,
            environ.get("HTTP_HOST", ""),
            chunked="chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower(),
            content_encoding=environ.get("HTTP_CONTENT_ENCODING", ""),
        )
        self.log.append(record)

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            record.status = status
            return (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

        return _CountingIterable(self.app(environ, recording_start_response), record)


class _CountingIterable:
    def __init__(self, inner: Iterable[bytes], record: RequestRecord) -> None:
        self._inner = inner
        self._record = record

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._inner:
                self._record.bytes_sent += len(chunk)
                yield chunk
                # pywsgi asks for the next chunk right after writing this one: after the last
                # chunk this is the last byte written, before the backend's own clean-up
                # (``git http-backend``'s exit), which the client does not wait for (P1, P5).
                self._record.end = time.monotonic()
        except Exception:
            self._record.raised = True
            raise
        finally:
            self._record.finished = True

    def close(self) -> None:
        if not self._record.end:  # no body was sent: it ends now
            self._record.end = time.monotonic()
        self._record.finished = True
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class _BaseServer:
    """Start/stop, URLs and the request log shared by every test server."""

    def __init__(self, host: str = "127.0.0.1", tls: tuple[Path, Path] | None = None) -> None:
        self.host = host
        self.tls = tls  # (certfile, keyfile): serve HTTPS
        self.requests: list[RequestRecord] = []
        self._server: WSGIServer | None = None

    def make_app(self) -> WSGIApp:
        raise NotImplementedError

    def start(self) -> _BaseServer:
        tls = {}
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*map(str, self.tls))
            tls["ssl_context"] = context
        app = _Recorder(self.make_app(), self.requests)
        self._server = WSGIServer((self.host, 0), app, log=None, error_log=None, **tls)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=5)
            self._server = None

    def __enter__(self):  # noqa: ANN204 - returns the concrete subclass
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_port

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def url(self, repo: str) -> str:
        return f"{self.base_url}/{repo}"

    def count(self, *, service: str | None = None, method: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (service is None or r.service == service) and (method is None or r.method == method)
        )

    def bytes_sent(self) -> int:
        return sum(r.bytes_sent for r in self.requests)

    def reset_log(self) -> None:
        self.requests.clear()


class GitServer(_BaseServer):
    """``git http-backend`` through the bridge, serving every git directory below ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        tls: tuple[Path, Path] | None = None,
        wrap: Callable[[WSGIApp], WSGIApp] | None = None,
        **bridge_options: Any,
    ) -> None:
        super().__init__(host, tls)
        self.root = Path(root)
        self.modes: dict[str, str] = {}
        self.extra_config: dict[str, dict[str, str]] = {}
        self._wrap = wrap
        self._bridge_options = bridge_options

    def configure(self, repo: str, mode: str = "none", **config: str) -> None:
        """Serve ``repo`` with an ``UPLOADPACK_MODES`` mode plus any extra git config."""
        if mode not in UPLOADPACK_MODES:
            raise ValueError(f"unknown mode {mode!r}; choose from {sorted(UPLOADPACK_MODES)}")
        self.modes[repo] = mode
        self.extra_config[repo] = dict(config)

    def make_app(self) -> WSGIApp:
        plain = directory_resolver(self.root)

        def resolve(url_path: str) -> RepoTarget | None:
            target = plain(url_path)
            if target is None:
                return None
            name = url_path.strip("/")
            config = {
                **UPLOADPACK_MODES[self.modes.get(name, "none")],
                **self.extra_config.get(name, {}),
            }
            return RepoTarget(target.path, config)

        app: WSGIApp = make_git_http_app(resolve, **self._bridge_options)
        return self._wrap(app) if self._wrap else app


class V0OnlyServer(_BaseServer):
    """``dulwich.web``: protocol v0, advertised wants only, pushes refused."""

    def __init__(self, root: Path, *, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.root = Path(root)

    def make_app(self) -> WSGIApp:
        from dulwich.server import FileSystemBackend
        from dulwich.web import make_wsgi_chain

        class RootedBackend(FileSystemBackend):
            # dulwich.web hands over "/src.git" (str for GET, bytes for POST); without the
            # leading "/" FileSystemBackend refuses every path as outside its root.
            def open_repository(self, path: Any) -> Any:
                return super().open_repository(os.fsdecode(path).lstrip("/"))

        inner = make_wsgi_chain(
            RootedBackend(str(self.root)),
            handlers={b"git-receive-pack": None, b"git-upload-archive": None},
        )

        def dechunked(
            environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            # gevent.pywsgi already de-chunked wsgi.input; dulwich would do it a second time.
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            return inner(environ, start_response)

        return dechunked
