"""Run ``grasp-relay`` as a separate process through its own CLI, the way a user would.

The relay listens on port 0 with its own data directory; the harness learns the port from the
one ready line the CLI prints on stderr (no port races), then polls NIP-11 until the relay answers
(deadline, no sleeps). Every process started is stopped: SIGTERM, then SIGKILL after a timeout.

    with RelayProcess(tmp_path / "relay", "--log-level", "DEBUG") as relay:
        ws = websocket.create_connection(relay.ws_url)

or, in a conftest: ``from tests.support.relay import relay_factory  # noqa: F401`` and then
``relay = relay_factory("--max-subscriptions", "3")`` in tests.

Client side: :class:`RelayClient` speaks NIP-01 JSON frames over websocket-client, and
:func:`accepted_repository` / :func:`issue` make traffic a GRASP relay accepts without git data.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import websocket

from grasp.nostr.event import Event, npub_encode, public_key, sign_event

#: The console script installed next to the interpreter running the tests (the project's venv).
RELAY_BIN = Path(sys.executable).parent / "grasp-relay"
READY_LINE = re.compile(r"grasp-relay listening on (http://\S+)")


#: ``GRASP_TEST_DATABASE=postgresql``: every relay this harness starts without its own
#: ``--database`` gets a fresh database on one throw-away PostgreSQL server for the session
#: (S19.1: the same process tests on both engines), one per data directory so that a restart
#: on the same data directory finds its events again. Set by ``tests/conftest.py``.
shared_postgres: Callable[[Path], str] | None = None


class RelayStartError(RuntimeError):
    """The relay process exited or did not become ready in time; the message carries its log."""


class RelayProcess:
    """One ``grasp-relay`` process; a context manager that always stops it."""

    def __init__(
        self,
        data_dir: Path | None,
        *args: str,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 20.0,
        command: Sequence[str] | None = None,
        cwd: Path | None = None,
        port: int | None = 0,
    ) -> None:
        """``data_dir=None`` passes no ``--data-dir`` (the relay uses ``<cwd>/grasp-data``);
        ``port=None`` passes no ``--host``/``--port`` (the relay's defaults apply)."""
        self._listen_args = ["--host", "127.0.0.1", "--port", str(port)] if port is not None else []
        self._pass_data_dir = data_dir is not None
        self.cwd = Path(cwd) if cwd is not None else None
        self.data_dir = (
            Path(data_dir) if data_dir is not None else (self.cwd or Path.cwd()) / "grasp-data"
        )
        self.args = tuple(args)
        self.start_timeout = start_timeout
        self._command = list(command) if command is not None else [str(RELAY_BIN)]
        self._env = _clean_env(env)
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.http_url = ""

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> RelayProcess:
        data_args = ["--data-dir", str(self.data_dir)] if self._pass_data_dir else []
        if shared_postgres is not None and not _names_database(self.args, self._env):
            data_args += ["--database", shared_postgres(self.data_dir.resolve())]
        argv = [*self._command, *self._listen_args, *data_args, *self.args]
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self._env,
            cwd=self.cwd,
        )
        self._reader = threading.Thread(target=self._read_stderr, name="relay-stderr", daemon=True)
        self._reader.start()
        try:
            deadline = time.monotonic() + self.start_timeout
            match = self.wait_for_log(READY_LINE, deadline - time.monotonic())
            self.http_url = match.group(1)
            self._wait_for_nip11(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; returns the exit status."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        return proc.returncode

    def send_signal(self, signum: int) -> None:
        assert self._proc is not None
        self._proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself;
        its exit status (TimeoutExpired if it does not)."""
        assert self._proc is not None
        return self._proc.wait(timeout)

    def __enter__(self) -> RelayProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- what tests use ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self.http_url.rsplit(":", 1)[1])

    @property
    def ws_url(self) -> str:
        return "ws" + self.http_url[len("http") :] + "/"

    url = ws_url

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def log(self) -> str:
        """Everything the relay wrote to stderr so far."""
        with self._changed:
            return "".join(self._lines)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 10.0) -> re.Match[str]:
        """Wait until a stderr line matches
        ``pattern``; RelayStartError if the process exits first."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    if match := regex.search(line):
                        return match
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    what = (
                        "exited" if self._eof else f"printed no {regex.pattern!r} in {timeout:g} s"
                    )
                    raise RelayStartError(f"relay {what}; its log:\n{''.join(self._lines)}")
                self._changed.wait(remaining)

    def nip11(self) -> dict:
        request = urllib.request.Request(
            self.http_url + "/", headers={"Accept": "application/nostr+json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    # --- internals ---------------------------------------------------------------------------

    _eof = False

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def _wait_for_nip11(self, deadline: float) -> None:
        while True:
            try:
                self.nip11()
                return
            except (OSError, urllib.error.URLError, ValueError) as exc:
                if time.monotonic() >= deadline or self.returncode is not None:
                    raise RelayStartError(
                        f"relay never answered NIP-11 ({exc}); log:\n{self.log}"
                    ) from exc
            with self._changed:
                self._changed.wait(0.05)  # bounded poll interval; also wakes on new log lines


def _clean_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The test environment without any GRASP_* setting of the developer's shell, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRASP_")}
    env.update(extra or {})
    return env


@pytest.fixture
def relay_factory(tmp_path: Path) -> Iterator[Callable[..., RelayProcess]]:
    """``relay_factory(*args, env=None)`` starts a relay in its
    own data dir; all stop at teardown."""
    started: list[RelayProcess] = []

    def start(*args: str, env: Mapping[str, str] | None = None) -> RelayProcess:
        relay = RelayProcess(tmp_path / f"relay-{len(started)}", *args, env=env)
        started.append(relay)
        return relay.start()

    yield start
    for relay in started:
        relay.stop()


# --- client side -------------------------------------------------------------------------------


class RelayClient:
    """A websocket-client connection speaking NIP-01 JSON frames, with a receive timeout."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout)

    def send(self, *frame: Any) -> None:
        self.ws.send(json.dumps(list(frame)))

    def send_raw(self, text: str) -> None:
        self.ws.send(text)

    def recv(self) -> list[Any]:
        return json.loads(self.ws.recv())

    def expect(self, verb: str) -> list[Any]:
        frame = self.recv()
        assert frame[0] == verb, frame
        return frame

    def publish(self, event: Event) -> list[Any]:
        """EVENT, then the OK frame."""
        self.send("EVENT", event.to_json())
        return self.expect("OK")

    def publish_all(self, events: Sequence[Event], page: int = 500) -> list[list[Any]]:
        """Pipelined: ``page`` EVENT frames, then their OK frames (in the order they came), and
        so on; every OK frame. One round trip per page, not per event: a burst lands at the
        speed of the relay's intake. Pages keep the unread OKs within the socket buffers."""
        answers: list[list[Any]] = []
        for start in range(0, len(events), page):
            batch = events[start : start + page]
            for event in batch:
                self.send("EVENT", event.to_json())
            answers += [self.expect("OK") for _ in batch]
        return answers

    def req(self, sub_id: str, *filters: dict) -> list[dict]:
        """REQ, then the stored events up to EOSE."""
        self.send("REQ", sub_id, *filters)
        events = []
        while (frame := self.recv())[0] == "EVENT":
            assert frame[1] == sub_id, frame
            events.append(frame[2])
        assert frame == ["EOSE", sub_id], frame
        return events

    def close(self) -> None:
        self.ws.close()


_unique = itertools.count()


def announcement(domain: str, secret: str, identifier: str = "repo") -> Event:
    """A kind 30617 listing the relay at ``domain`` in ``clone`` and ``relays`` (S10.4)."""
    npub = npub_encode(public_key(secret))
    tags = [
        ["d", identifier],
        ["name", identifier],
        ["clone", f"http://{domain}/{npub}/{identifier}.git"],
        ["relays", f"ws://{domain}"],
    ]
    return sign_event(secret, 30617, tags, f"{identifier} for tests")


def issue(
    repo: Event, secret: str, content: str | None = None, tags: Sequence[Sequence[str]] = ()
) -> Event:
    """A kind 1621 issue referencing ``repo`` (unique content unless given): GRASP accepts it."""
    text = content if content is not None else f"issue {next(_unique)}"
    return sign_event(secret, 1621, [["a", f"30617:{repo.pubkey}:{repo.d}"], *tags], text)


def accepted_repository(
    client: RelayClient, domain: str, secret: str, identifier: str = "repo", timeout: float = 10.0
) -> Event:
    """Get an announcement of ``identifier`` served, so that issues referencing it are accepted.

    A GRASP relay holds a new announcement in purgatory until git data arrives (S1.1); a state
    event with no refs needs no objects, is released at once and promotes the announcement
    (S8.2), asynchronously in the Releaser. A plain NIP-01 relay simply stores both. Either way:
    publish both, then poll (with a deadline) until the announcement is served.
    """
    repo = announcement(domain, secret, identifier)
    for event in (repo, sign_event(secret, 30618, [["d", identifier]], "")):
        ok = client.publish(event)
        assert ok[2] is True, ok
    deadline = time.monotonic() + timeout
    while not client.req("served", {"ids": [repo.id]}):
        assert time.monotonic() < deadline, f"announcement {repo.id} was never served"
        time.sleep(0.02)  # poll interval of a deadline-bounded condition check
    return repo


def _names_database(args: Sequence[str], env: Mapping[str, str]) -> bool:
    return any(a == "--database" or a.startswith("--database=") for a in args) or (
        "GRASP_DATABASE" in env
    )
