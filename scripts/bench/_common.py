"""Shared pieces of the end-to-end sync benchmarks (latency.py, politeness.py, batching.py).

These benchmarks drive a real ``grasp-relay`` process (started through its CLI by
tests/support/relay.py) against real ``git http-backend`` servers running in the benchmark
process (tests/support/gitserver.py), so every figure includes the whole path a user's event
takes: websocket, write policy, purgatory, actors, the fetch over HTTP, release and broadcast.

The importing script must call ``gevent.monkey.patch_all()`` before importing this module.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from grasp.nostr.event import Event, npub_encode  # noqa: E402
from tests.support.gitenv import scrub_git_env  # noqa: E402
from tests.support.nip34 import Key  # noqa: E402
from tests.support.relay import RelayClient, RelayProcess  # noqa: E402

__all__ = [
    "BenchError",
    "Key",
    "RelayClient",
    "announcement",
    "git_fetch_seconds",
    "cpu_seconds",
    "percentile",
    "print_table",
    "publish",
    "relay_process",
    "relay_process_of",
    "scrape_metrics",
    "scratch_dir",
    "Span",
    "span_recorder",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The system did not do what the benchmark needs (a refused event, a missing release)."""


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory with git isolated inside it (``scrub_git_env``), removed by
    ``rm -rf`` afterwards: ``shutil.rmtree`` ran out of file descriptors on the ~20,000
    directories of politeness.py's repositories on this machine."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        scrub_git_env(path / "home", name="Bench")
        yield path
    finally:
        subprocess.run(["rm", "-rf", "--", str(path)], check=False)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p50 of 50 samples is the 25th smallest, p95 the 48th)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))]


def print_table(
    title: str, header: Sequence[str], rows: Iterable[Sequence[object]], notes: Sequence[str] = ()
) -> None:
    """A plain text table: first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join(
            [first, *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=False))]
        ).rstrip()

    print(f"\n{title}")
    print(line(cells[0]))
    print("-" * len(line(cells[0])))
    for row in cells[1:]:
        print(line(row))
    for note in notes:
        print(note)


# --- the relay and its clients -------------------------------------------------------------------


def relay_process(data_dir: Path, *args: str) -> RelayProcess:
    """A ``grasp-relay`` on 127.0.0.1:0 that may fetch from loopback git servers; use it as a
    context manager (started on entry, always stopped on exit)."""
    return RelayProcess(
        data_dir,
        "--allow-private-fetch",
        "--log-level",
        "WARNING",
        "--event-rate-limit",
        "0",
        *args,
    )


def relay_process_of(data_dir: Path, source: Path | None, *args: str) -> RelayProcess:
    """The relay of this checkout, or of an older tree ``source`` for a before/after run."""
    if source is None:
        return RelayProcess(data_dir, *args, start_timeout=600)
    env = {"PYTHONPATH": str(source)}
    command = [sys.executable, "-m", "grasp.relay.cli"]  # ``-m`` puts the working directory
    return RelayProcess(  # first on sys.path, so run it inside ``source``
        data_dir, *args, env=env, command=command, start_timeout=600, cwd=source
    )


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (Linux /proc): a figure other load barely moves; 0 when
    the process is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def relay_authority(relay: RelayProcess) -> str:
    return f"127.0.0.1:{relay.port}"


def announcement(
    key: Key, identifier: str, relay: RelayProcess, remote_urls: Sequence[str]
) -> Event:
    """A 30617 the relay accepts (it lists the relay, S10.4) that also names ``remote_urls``,
    the servers purgatory sync fetches from (the relay's own URL is excluded, S3.2)."""
    authority = relay_authority(relay)
    own = f"http://{authority}/{npub_encode(key.pubkey)}/{identifier}.git"
    return key.announcement(identifier, clone=[own, *remote_urls], relays=[f"ws://{authority}"])


def publish(client: RelayClient, event: Event, expect_prefix: str = "") -> list:
    """EVENT -> OK; BenchError unless accepted with a message starting with ``expect_prefix``."""
    ok = client.publish(event)
    if ok[2] is not True or not str(ok[3]).startswith(expect_prefix):
        raise BenchError(
            f"event {event.id} (kind {event.kind}) answered {ok}, "
            f"expected OK true {expect_prefix!r}"
        )
    return ok


def publish_pipelined(
    client: RelayClient, events: Sequence[Event], expect_prefix: str = ""
) -> None:
    """``RelayClient.publish_all``, then every OK checked as ``publish`` does. One OK round
    trip per event made a burst of held events (each committed before its OK, S9.1) outlast
    a 1 s sync delay once the disk was busy; pipelined, the relay's own intake is the limit."""
    answers = {ok[1]: ok for ok in client.publish_all(events)}
    for event in events:
        ok = answers.get(event.id)
        if ok is None or ok[2] is not True or not str(ok[3]).startswith(expect_prefix):
            raise BenchError(
                f"event {event.id} (kind {event.kind}) answered {ok}, "
                f"expected OK true {expect_prefix!r}"
            )


def scrape_metrics(relay: RelayProcess) -> dict[str, float]:
    """``/metrics`` as ``{'name{label="v"}': value}`` (label
    sets sorted, samples of every family)."""
    with urllib.request.urlopen(relay.http_url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


# --- what a git server sees ----------------------------------------------------------------


@dataclass
class Span:
    path: str
    method: str
    start: float  # the WSGI app was called: request line and headers read
    end: float = float("nan")
    #: when the server accepted the connection, for the first request on it (a server that
    #: stamps accepts: ``environ["bench.accepted"]``); nan otherwise
    accepted: float = float("nan")
    #: when the server had read the request line (``environ["bench.line_read"]``); nan: unknown
    line_read: float = float("nan")


class _Ending:
    """The response iterable, recording when the last body chunk was handed to the socket.

    The server asks for the next chunk right after ``sendall`` of the previous one returned (no
    switch in between), so that instant is when the client could first have the whole response.
    Waiting for ``close()`` instead would add the server's own clean-up (``git http-backend``'s
    exit, the chunk terminator), during which the relay may legitimately have started its next
    request: the server would then count an overlap the relay never had.
    """

    def __init__(self, inner: Iterable[bytes], span: Span) -> None:
        self._inner = inner
        self._span = span

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            yield chunk
            self._span.end = time.monotonic()

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            if self._span.end != self._span.end:  # no body was sent: it ends now
                self._span.end = time.monotonic()


def span_recorder(log: list[Span]) -> Callable[[Any], Any]:
    """``GitServer(wrap=...)`` middleware appending a :class:`Span` (start and end, monotonic
    clock, the same as the relay's actor clock) per request."""

    def wrap(app: Any) -> Any:
        def recorded(environ: dict, start_response: Callable[..., Any]) -> Any:
            span = Span(
                environ.get("PATH_INFO", ""),
                environ.get("REQUEST_METHOD", ""),
                time.monotonic(),
                accepted=environ.get("bench.accepted", float("nan")),
                line_read=environ.get("bench.line_read", float("nan")),
            )
            log.append(span)
            return _Ending(app(environ, start_response), span)

        return recorded

    return wrap


# --- git ---------------------------------------------------------------------------------------


def git_fetch_seconds(url: str, oids: Sequence[str], scratch: Path) -> float:
    """Wall time of the git CLI fetching ``oids`` from ``url`` into a new empty bare repository
    (protocol v2, as the relay fetches), the raw cost the relay's overhead is measured against."""
    subprocess.run(["git", "init", "--quiet", "--bare", str(scratch)], check=True)
    command = [
        "git",
        "--git-dir",
        str(scratch),
        "-c",
        "protocol.version=2",
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        url,
        *oids,
    ]
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - began
