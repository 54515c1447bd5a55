#!/usr/bin/env python3
"""A ``tests.support.gitserver.GitServer`` in a process of its own, for benchmarks (P1, P5).

    python scripts/bench/_gitserve.py ROOT [--host 127.0.0.1] [--spans]

Prints its base URL on the first line of stdout and serves every bare repository below ROOT
until stdin closes.  ``GET /_log`` answers the finished requests so far as JSON (one object per
:class:`RequestRecord`, times from ``time.monotonic()``, one clock for every process of the
machine) plus how many are still sending, and forgets the finished ones; the ``/_log``
requests themselves are left out.  Why a process: a
fetch measured in the server's own process shares its hub and its core with the server, which
favours or penalises one side depending on scheduling (issue 16, item 4).

``--spans`` (P2, ``politeness.py``): ``/_log`` answers the ended requests as
:class:`_common.Span` objects instead, each with the instant ``accept`` returned its connection
(first request on a connection only), and the server stamps those accepts.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.fileobject import FileObjectPosix  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _common import Span, span_recorder  # noqa: E402

from tests.support.gitserver import GitServer, RequestRecord, WSGIApp  # noqa: E402

LOG_PATH = "/_log"


class GitServerProcess:
    """The benchmark's side: start this script, read its URL, fetch and clear its log."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        *,
        spans: bool = False,
        latency: float = 0.0,
        nice: int = 0,
    ) -> None:
        self.root, self.host, self.spans, self.latency = root, host, spans, latency
        self.nice = nice
        self.base_url = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> GitServerProcess:
        self._process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                str(self.root),
                "--host",
                self.host,
                *(["--spans"] if self.spans else []),
                *(["--latency-ms", f"{self.latency * 1e3:g}"] if self.latency else []),
                *(["--nice", str(self.nice)] if self.nice else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().decode().strip()
        if not self.base_url.startswith("http"):
            self.__exit__()
            raise RuntimeError("the git server process did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def url(self, repo: str) -> str:
        return f"{self.base_url}/{repo}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "server process not started"
        return self._process.pid

    def take_log(self, expect: int = 0, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The requests since the last call, once ``expect`` of them have sent their last byte.

        The client may have read the last byte before the server's iteration ended, so the
        log is polled (bounded) until no request is still sending and at least ``expect``
        have ended.
        """
        deadline = time.monotonic() + timeout
        records: list[dict[str, Any]] = []
        while True:
            with urllib.request.urlopen(self.base_url + LOG_PATH, timeout=timeout) as reply:
                answer = json.load(reply)
            records += answer["records"]
            if not answer["pending"] and len(records) >= expect:
                return records
            if time.monotonic() > deadline:
                raise RuntimeError(f"server log incomplete: {records}")
            time.sleep(0.01)

    def take_spans(self, timeout: float = 10.0) -> list[Span]:
        """The ended requests since the last call (``--spans``), once none is still sending."""
        return [Span(**record) for record in self.take_log(0, timeout)]


class _StampingHandler(WSGIHandler):
    """Hands the connection's accept instant to the first request's environ only (a later
    request on a kept-alive connection did not wait for an accept), and to every request the
    instant its request line had been read: between the two lie the client sending its
    request and this server's greenlet getting to read it."""

    line_read = float("nan")

    def read_requestline(self) -> str:
        line: str = super().read_requestline()
        self.line_read = time.monotonic()
        return line

    def get_environ(self) -> dict:
        environ = super().get_environ()
        accepted = self.server.accepted.pop(self.socket.fileno(), None)
        if accepted is not None:
            environ["bench.accepted"] = accepted
        environ["bench.line_read"] = self.line_read
        return environ


class _StampingWSGIServer(WSGIServer):
    """gevent's WSGI server, stamping each connection when ``accept`` returned it: the earliest
    instant this process knows of a request, before the connection's greenlet ran, read the
    request line and called the app (the span's ``start``). The gap between the two is this
    benchmark process's own latency (ten servers and their CGI children on one hub)."""

    handler_class = _StampingHandler

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.accepted: dict[int, float] = {}

    def do_read(self):  # noqa: ANN202 - gevent's own signature
        connection = super().do_read()
        if connection is not None:
            self.accepted[connection[0].fileno()] = time.monotonic()
        return connection


class StampingGitServer(GitServer):
    """:class:`GitServer` whose requests carry the accept instant of their connection. Its own
    request log (``requests``) stays empty: the benchmark's ``span_recorder`` logs instead."""

    def start(self) -> StampingGitServer:
        self._server = _StampingWSGIServer(
            (self.host, 0), self.make_app(), log=None, error_log=None
        )
        self._server.start()
        return self


def with_span_log(spans: list[Span]) -> Callable[[WSGIApp], WSGIApp]:
    """``/_log`` of a ``--spans`` server: the ended spans leave the log, open ones stay."""

    def wrap(app: WSGIApp) -> WSGIApp:
        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != LOG_PATH:
                return app(environ, start_response)
            done = [s for s in spans if s.end == s.end]  # nan: still sending
            spans[:] = [s for s in spans if s.end != s.end]
            reply = {"records": [dataclasses.asdict(s) for s in done], "pending": len(spans)}
            body = json.dumps(reply).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]

        return serve

    return wrap


def with_log_endpoint(log: list[RequestRecord]) -> Callable[[WSGIApp], WSGIApp]:
    def wrap(app: WSGIApp) -> WSGIApp:
        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != LOG_PATH:
                return app(environ, start_response)
            # finished records leave the log; those still sending stay for the next call
            done = [r for r in log if r.finished and r.path != LOG_PATH]
            log[:] = [r for r in log if not r.finished and r.path != LOG_PATH]
            reply = {"records": [dataclasses.asdict(r) for r in done], "pending": len(log)}
            body = json.dumps(reply).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]

        return serve

    return wrap


def with_latency(seconds: float) -> Callable[[WSGIApp], WSGIApp]:
    """Answer each request only ``seconds`` after it arrived, as a remote server one round trip
    away would look to its client (P2 ``--server-latency-ms``): the fetch is then bound by
    waiting, not by this machine's CPU, as on the internet. The wait lies inside the span
    (wrapped by the recorder), so the server-side duration the ideal uses includes it."""

    def wrap(app: WSGIApp) -> WSGIApp:
        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != LOG_PATH:
                gevent.sleep(seconds)
            return app(environ, start_response)

        return serve

    return wrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--spans", action="store_true", help="log spans with accept instants")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="wait this long before answering a request"
    )
    parser.add_argument(
        "--nice", type=int, default=0, help="lower this server's CPU priority (os.nice)"
    )
    args = parser.parse_args()
    if args.nice:  # its git children inherit it: the whole server yields the CPU to the relay
        os.nice(args.nice)
    delayed = with_latency(args.latency_ms / 1e3) if args.latency_ms > 0 else (lambda a: a)
    log: list[RequestRecord] = []
    spans: list[Span] = []
    server: GitServer
    if args.spans:
        record = span_recorder(spans)
        server = StampingGitServer(
            args.root, host=args.host, wrap=lambda a: with_span_log(spans)(record(delayed(a)))
        )
    else:
        server = GitServer(args.root, host=args.host, wrap=with_log_endpoint(log))
        server.requests = log
    with server:
        print(server.base_url, flush=True)
        stdin = FileObjectPosix(sys.stdin.fileno(), "rb")
        while stdin.read(4096):  # serve until the benchmark closes our stdin (or dies)
            gevent.sleep(0)


if __name__ == "__main__":
    main()
