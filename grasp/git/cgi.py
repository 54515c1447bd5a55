"""Running a CGI program (``git http-backend``) under gevent and streaming its output.

The request body is fed to the program's stdin and its stderr drained by two greenlets, so a
program that writes before it has read everything cannot deadlock against us; stdout is handed
to the WSGI server chunk by chunk as the program produces it.  ``gevent.subprocess`` is used
explicitly, so the pipes are cooperative even in a process that was not monkey-patched.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterator
from typing import IO

import gevent
from gevent import subprocess as gsubprocess

logger = logging.getLogger(__name__)

_MAX_CGI_HEADER_BYTES = 64 * 1024
_CHUNK = 64 * 1024
_STDERR_KEEP = 8 * 1024


class CgiProcess:
    """One running ``git http-backend``: feeds stdin and drains stderr in greenlets."""

    @classmethod
    def start(cls, backend: str, env: dict[str, str], body: IO[bytes]) -> CgiProcess:
        """Start ``backend`` with ``env``; ``body`` (owned from now on) becomes its stdin."""
        proc = gsubprocess.Popen(
            [backend],
            stdin=gsubprocess.PIPE,
            stdout=gsubprocess.PIPE,
            stderr=gsubprocess.PIPE,
            env=env,
        )
        return cls(proc, body)

    def __init__(self, proc: gsubprocess.Popen, body: IO[bytes]) -> None:
        self.proc = proc
        self.stderr_tail = b""
        self._body = body
        self._writer = gevent.spawn(self._feed_stdin)
        self._stderr_reader = gevent.spawn(self._drain_stderr)

    def _feed_stdin(self) -> None:
        assert self.proc.stdin is not None
        try:
            shutil.copyfileobj(self._body, self.proc.stdin, _CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the backend decided not to read everything (e.g. an error reply)
        finally:
            self._body.close()
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := self.proc.stderr.read(_CHUNK):
            self.stderr_tail = (self.stderr_tail + chunk)[-_STDERR_KEEP:]

    def read_headers(self) -> tuple[str | None, list[tuple[str, str]], bytes]:
        """Read the CGI header block; returns (status, headers, body bytes already read)."""
        assert self.proc.stdout is not None
        buf = b""
        while True:
            for sep in (b"\r\n\r\n", b"\n\n"):
                head, found, rest = buf.partition(sep)
                if found:
                    status, headers = parse_cgi_headers(head)
                    return status, headers, rest
            if len(buf) > _MAX_CGI_HEADER_BYTES:
                return None, [], b""
            chunk = self.proc.stdout.read1(_CHUNK)
            if not chunk:
                return None, [], b""
            buf += chunk

    def read(self) -> bytes:
        assert self.proc.stdout is not None
        return self.proc.stdout.read1(_CHUNK)

    def close(self, *, finished: bool = False) -> int:
        """Reap the process and return its exit status.

        ``finished`` means its stdout was read to the end, so it exits by itself; otherwise the
        client went away early and the process is killed rather than left writing to a pipe.
        """
        killed = not finished and self.proc.poll() is None
        if killed:
            self.proc.kill()
        rc = self.proc.wait()
        self._writer.kill()
        self._stderr_reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        if rc != 0:
            logger.log(
                logging.DEBUG if killed else logging.INFO,
                "git http-backend exited with %s: %s",
                rc,
                self.stderr_tail.decode("utf-8", "replace").strip(),
            )
        return rc


class StreamedResponse:
    """WSGI iterable that streams the CGI's stdout; ``close()`` always reaps the process."""

    def __init__(
        self, cgi: CgiProcess, first: bytes, on_done: Callable[[bool], None] | None
    ) -> None:
        self._cgi = cgi
        self._first = first
        self._on_done = on_done
        self._finished = False
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self._first:
            yield self._first
        while chunk := self._cgi.read():
            yield chunk
        self._finished = True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        rc = self._cgi.close(finished=self._finished)
        if self._on_done is not None:
            try:
                self._on_done(self._finished and rc == 0)
            except Exception:
                logger.exception("after_receive_pack hook failed")


def parse_cgi_headers(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    status = "200 OK"
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not name:
            continue
        if name.lower() == "status":
            status = value
        else:
            headers.append((name, value))
    return status, headers
