"""A WSGI bridge to the real ``git http-backend`` CGI program (S10.5).

Why a bridge rather than ``dulwich.web``: the real backend is about 10x faster at building packs,
speaks protocol v2 (so any object may be wanted by id), honours the ``uploadpack.*`` settings and
runs as a separate process, so pack generation never blocks the gevent hub
(python-ecosystem.md §2a, §2b, §2g).

What the bridge does for each request:

* maps ``/<repo path>/{info/refs,git-upload-pack,git-receive-pack}`` to a repository through a
  *resolver* (anything else, or an unknown repository, is 404), and gives the CGI only that one
  repository (``GIT_PROJECT_ROOT`` = its parent), so a request can never reach another path;
* passes the client's ``Git-Protocol`` header as ``GIT_PROTOCOL`` (this is what enables v2);
* accepts chunked request bodies (gevent.pywsgi has already de-chunked ``wsgi.input``) and gzip
  bodies (passed through: ``git http-backend`` gunzips by itself), spooling the body to a
  temporary file so large pushes do not sit in memory;
* passes per-repository git configuration with ``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n``;
* STREAMS the CGI output to the client as it is produced (a clone of a big repository is never
  buffered), and kills the CGI if the client goes away;
* reads ``PATH_INFO`` (percent-decoded once, latin-1 per PEP 3333) once as UTF-8
  (:func:`request_path`, S15.3); answers ``HEAD`` on ``info/refs`` like ``GET`` without a body;
  completes upload-pack advertisements with GRASP-01 L56's capabilities (``advertisement.py``);
* offers ``before_receive_pack(environ, body) -> str | None``: called with the decompressed push
  body (a seekable binary file at offset 0; ``grasp.git.receive.read_push_commands`` parses its
  ref updates) before ``git-receive-pack`` runs; a returned string refuses the push with HTTP 200
  and a result that ``git push`` prints (``remote: <message>`` and ``[remote rejected]`` per
  ref, see ``receive.py``); it may put extra environment variables for the CGI (and so for
  receive-pack and its hooks) into ``environ[CGI_ENV_KEY]``.  ``after_receive_pack(environ,
  ok)`` is called exactly once for every push the hook let through, when the CGI ended or could
  not run.
  Receive-pack itself is only enabled by git when the configuration says
  ``http.receivepack=true``.
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from grasp.git.advertisement import (
    V2_EXTRA,
    awaiting,
    complete_v0_advertisement,
    complete_v2_advertisement,
    granted,
    upload_pack_capabilities,
)
from grasp.git.cgi import CgiProcess, StreamedResponse
from grasp.git.receive import MalformedPush, read_push_commands, refusal_response

logger = logging.getLogger(__name__)

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Any]

#: ``environ`` key under which ``before_receive_pack`` may leave extra CGI environment variables.
CGI_ENV_KEY = "grasp.cgi_env"
_ROUTE = re.compile(r"^(?P<repo>/.+?)(?P<tail>/info/refs|/git-upload-pack|/git-receive-pack)$")
_CHUNK = 64 * 1024
_SPOOL_IN_MEMORY = 1 << 20
#: At most this much of a v2 advertisement is held back to complete it (git's is ~200 bytes).
_ADVERTISEMENT_BUFFER = 64 * 1024
# Environment variables of the relay process that a git subprocess may legitimately need.
_PASSTHROUGH_ENV = (
    "HOME",
    "XDG_CONFIG_HOME",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_GLOBAL",
    "LANG",
    "TZ",
)


@dataclass(frozen=True)
class RepoTarget:
    """A repository the bridge may serve, with the git configuration to serve it with."""

    path: Path
    config: Mapping[str, str] = field(default_factory=dict)


Resolver = Callable[[str], "RepoTarget | None"]
BeforeReceivePack = Callable[[WSGIEnviron, IO[bytes]], "str | None"]
AfterReceivePack = Callable[[WSGIEnviron, bool], None]


@functools.lru_cache(maxsize=1)
def git_http_backend_path() -> str:
    """Locate ``git-http-backend`` in git's exec path (it is not on ``$PATH``)."""
    exec_path = subprocess.run(
        ["git", "--exec-path"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return os.path.join(exec_path, "git-http-backend")


def request_path(environ: WSGIEnviron) -> str | None:
    """``PATH_INFO`` as the UTF-8 text the client percent-encoded, or None when it is not UTF-8.

    PEP 3333 servers (gevent's pywsgi included) percent-decode the path once and hand the bytes
    over as a latin-1 string; encoding back to latin-1 recovers them. A path that cannot be
    latin-1 is already text (a hand-built environ) and is taken as it is.
    """
    raw = environ.get("PATH_INFO", "")
    try:
        return str(raw.encode("latin-1").decode("utf-8"))
    except UnicodeEncodeError:
        return str(raw)
    except UnicodeDecodeError:
        return None


def is_git_dir(path: Path) -> bool:
    """True for something that looks like a (bare) git directory."""
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def directory_resolver(root: Path, config: Mapping[str, str] | None = None) -> Resolver:
    """Serve every git directory below ``root`` under its relative path, with one configuration.

    Path segments that are empty, ``.`` or ``..``, backslashes, NUL bytes and symlinks leading
    out of ``root`` all resolve to nothing (404).
    """
    root = Path(root).resolve()
    frozen = dict(config or {})

    def resolve(url_path: str) -> RepoTarget | None:
        parts = url_path.strip("/").split("/")
        if any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
            return None
        path = root.joinpath(*parts)
        if not path.resolve().is_relative_to(root) or not is_git_dir(path):
            return None
        return RepoTarget(path, frozen)

    return resolve


def make_git_http_app(
    resolver: Path | Resolver,
    *,
    config: Mapping[str, str] | None = None,
    before_receive_pack: BeforeReceivePack | None = None,
    after_receive_pack: AfterReceivePack | None = None,
    max_request_bytes: int = 1 << 30,
    backend: str | None = None,
) -> GitHttpBackendApp:
    """Build the WSGI app.  ``resolver`` is a root directory or ``url_path -> RepoTarget | None``.

    ``config`` is only used with a root directory (a resolver carries its own per repository).
    ``max_request_bytes`` bounds a request body, also after gzip decompression.
    """
    if isinstance(resolver, (str, Path)):
        resolver = directory_resolver(Path(resolver), config)
    elif config:
        raise ValueError("config applies to a root directory; a resolver returns it per repository")
    return GitHttpBackendApp(
        resolver,
        before_receive_pack=before_receive_pack,
        after_receive_pack=after_receive_pack,
        max_request_bytes=max_request_bytes,
        backend=backend or git_http_backend_path(),
    )


class RequestTooLarge(Exception):
    """The request body exceeds ``max_request_bytes``."""


class GitHttpBackendApp:
    """The WSGI application; see the module docstring for what it guarantees."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        before_receive_pack: BeforeReceivePack | None,
        after_receive_pack: AfterReceivePack | None,
        max_request_bytes: int,
        backend: str,
    ) -> None:
        self.resolver = resolver
        self.before_receive_pack = before_receive_pack
        self.after_receive_pack = after_receive_pack
        self.max_request_bytes = max_request_bytes
        self.backend = backend

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        path = request_path(environ)
        match = _ROUTE.match(path) if path is not None else None
        target = self.resolver(match["repo"]) if match else None
        if match is None or target is None:
            return _plain(start_response, "404 Not Found", "repository not found\n")
        tail = match["tail"]
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in (("GET", "HEAD") if tail == "/info/refs" else ("POST",)):
            return _plain(start_response, "405 Method Not Allowed", "method not allowed\n")
        try:
            body = self._spool_body(environ, decompress=tail == "/git-receive-pack")
        except RequestTooLarge:
            return _plain(start_response, "413 Content Too Large", "request body too large\n")
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            return _plain(start_response, "400 Bad Request", f"unreadable request body: {exc}\n")
        if tail == "/git-receive-pack" and self.before_receive_pack is not None:
            try:
                refusal = self.before_receive_pack(environ, body)
            except Exception:
                logger.exception("before_receive_pack hook failed; refusing the push")
                refusal = "internal error while authorising the push"
            body.seek(0)
            if refusal is not None:
                try:
                    return _refuse_push(start_response, refusal, body)
                finally:
                    body.close()
        env = self._cgi_env(environ, target, tail, body)
        return self._run_cgi(environ, start_response, env, body, target)

    def _spool_body(self, environ: WSGIEnviron, *, decompress: bool) -> IO[bytes]:
        """Copy the request body into a temporary file (gunzipped when ``decompress``)."""
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 - returned
        try:
            source: Any = environ["wsgi.input"]
            if decompress and environ.get("HTTP_CONTENT_ENCODING", "").lower() in (
                "gzip",
                "x-gzip",
            ):
                bounded: Any = _Bounded(source, self.max_request_bytes)  # a readable stream
                source = gzip.GzipFile(fileobj=bounded)
            _copy(source, spool, self.max_request_bytes)
            spool.seek(0)
            return spool
        except BaseException:
            spool.close()
            raise

    def _cgi_env(
        self, environ: WSGIEnviron, target: RepoTarget, tail: str, body: IO[bytes]
    ) -> dict[str, str]:
        body.seek(0, os.SEEK_END)
        length = body.tell()
        body.seek(0)
        env = {name: os.environ[name] for name in _PASSTHROUGH_ENV if name in os.environ}
        env.update(
            PATH=os.environ.get("PATH", os.defpath),
            GIT_PROJECT_ROOT=str(target.path.parent),
            GIT_HTTP_EXPORT_ALL="1",
            # HEAD runs the CGI as GET; the bridge then sends the headers only.
            REQUEST_METHOD="GET" if tail == "/info/refs" else "POST",
            PATH_INFO="/" + target.path.name + tail,
            QUERY_STRING=environ.get("QUERY_STRING", ""),
            CONTENT_TYPE=environ.get("CONTENT_TYPE", ""),
            CONTENT_LENGTH=str(length),
            REMOTE_ADDR=environ.get("REMOTE_ADDR", ""),
        )
        if environ.get("HTTP_GIT_PROTOCOL"):
            env["GIT_PROTOCOL"] = env["HTTP_GIT_PROTOCOL"] = environ["HTTP_GIT_PROTOCOL"]
        # receive-pack bodies were decompressed while spooling; others go through as sent.
        encoding = environ.get("HTTP_CONTENT_ENCODING")
        if encoding and tail != "/git-receive-pack":
            env["HTTP_CONTENT_ENCODING"] = encoding
        env.update(environ.get(CGI_ENV_KEY, {}))
        env["GIT_CONFIG_COUNT"] = str(len(target.config))
        for i, (key, value) in enumerate(target.config.items()):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        return env

    def _run_cgi(
        self,
        environ: WSGIEnviron,
        start_response: StartResponse,
        env: dict[str, str],
        body: IO[bytes],
        target: RepoTarget,
    ) -> Iterable[bytes]:
        tail = env["PATH_INFO"][len(target.path.name) + 1 :]
        on_done: Callable[[bool], None] | None = None
        if tail == "/git-receive-pack" and self.after_receive_pack is not None:
            hook = self.after_receive_pack
            on_done = lambda ok: hook(environ, ok)  # noqa: E731
        try:
            cgi = CgiProcess.start(self.backend, env, body)
        except OSError as exc:
            body.close()
            logger.error("cannot start %s: %s", self.backend, exc)
            _done(on_done)
            return _plain(start_response, "500 Internal Server Error", "git backend unavailable\n")
        try:
            status, headers, first = cgi.read_headers()
        except BaseException:
            cgi.close()
            _done(on_done)
            raise
        if status is None:
            cgi.close()
            _done(on_done)
            return _plain(start_response, "502 Bad Gateway", "git backend sent no headers\n")
        if environ.get("REQUEST_METHOD") == "HEAD":
            cgi.close()
            start_response(status, headers)
            return []
        if tail == "/info/refs" and "service=git-upload-pack" in env.get("QUERY_STRING", ""):
            return _advertisement(cgi, start_response, (status, headers, first), env, target)
        start_response(status, headers)
        return StreamedResponse(cgi, first, on_done)


def _done(on_done: Callable[[bool], None] | None) -> None:
    """The push did not run: tell the after-hook so (it releases what the before-hook took)."""
    if on_done is not None:
        try:
            on_done(False)
        except Exception:
            logger.exception("after_receive_pack hook failed")


class _Bounded:
    """Read-only view of a stream that refuses to yield more than ``limit`` bytes."""

    def __init__(self, raw: Any, limit: int) -> None:
        self._raw = raw
        self._left = limit

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(_CHUNK if size is None or size < 0 else size)
        self._left -= len(data)
        if self._left < 0:
            raise RequestTooLarge()
        return data


def _copy(source: Any, sink: IO[bytes], limit: int) -> None:
    total = 0
    while chunk := source.read(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise RequestTooLarge()
        sink.write(chunk)


def _advertisement(
    cgi: CgiProcess,
    start_response: StartResponse,
    head: tuple[str, list[tuple[str, str]], bytes],
    env: dict[str, str],
    target: RepoTarget,
) -> Iterable[bytes]:
    """Stream an upload-pack advertisement, completed with the capabilities GRASP requires
    where git left them out (S15.3): an empty repository's v0 answer, any v2 answer.

    ``head`` is the CGI's status, headers and the body bytes read with them. Only as much is
    held back as could still turn out to need completing (``awaiting``): any other answer
    streams on at once, as every other response of the bridge does.
    """
    status, headers, body = head
    v2 = "version=2" in env.get("GIT_PROTOCOL", "")
    if status.startswith("200"):
        body, ended = _read_while_awaiting(cgi, body, v2)
        if v2:
            extra = [name for name in granted(target.config) if name in V2_EXTRA]
            completed = complete_v2_advertisement(body, extra)
        else:
            caps = upload_pack_capabilities(target.path, target.config) if ended else []
            completed = complete_v0_advertisement(body, caps) if ended else None
        if completed is not None:
            body = completed
            headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
    start_response(status, headers)
    return StreamedResponse(cgi, body, None)


def _read_while_awaiting(cgi: CgiProcess, body: bytes, v2: bool) -> tuple[bytes, bool]:
    """Read on while ``body`` may still need completing; returns it and whether the CGI ended."""
    while awaiting(body, v2=v2, limit=_ADVERTISEMENT_BUFFER):
        chunk = cgi.read()
        if not chunk:
            return body, True
        body += chunk
    if not v2 and complete_v0_advertisement(body, []) is not None:
        chunk = cgi.read()  # exactly the empty answer so far: is that all of it?
        return body + chunk, not chunk
    return body, False


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    data = text.encode("utf-8")
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    )
    return [data]


def _refuse_push(start_response: StartResponse, message: str, body: IO[bytes]) -> list[bytes]:
    """Refuse a push with HTTP 200 and a result git prints (see ``receive.py``)."""
    try:
        push = read_push_commands(body)
    except MalformedPush:
        push = None
    data = refusal_response(push, message)
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/x-git-receive-pack-result"),
            ("Cache-Control", "no-cache"),
            ("Content-Length", str(len(data))),
        ],
    )
    return [data]
