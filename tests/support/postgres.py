"""A throw-away PostgreSQL server for tests and benchmarks (S19.1: one contract suite on both).

:class:`PostgresServer` runs Debian's own binaries (``/usr/lib/postgresql/<ver>/bin``) on a
temporary directory and a free 127.0.0.1 port. PostgreSQL refuses to run as root, and the tests
and CI do run as root, so the server then runs as an unprivileged system user: ``grasp-ci``
(``.ci/run`` creates it), else Debian's own ``postgres`` account, or ``$GRASP_TEST_PG_USER``.
When not root the server runs as the current user.

The pytest fixtures at the end give a session one server (``postgres_server``) and each test a
fresh database copied from a template (``postgres_dsn``); the server is stopped at the end of the
session with ``pg_ctl stop -m fast``, also when a test failed. Without the binaries the tests
that use them skip, naming the Debian package to install.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest

logger = logging.getLogger(__name__)

PG_ROOT = Path("/usr/lib/postgresql")
DEBIAN_PACKAGE = "postgresql"
CI_USER = "grasp-ci"
SUPERUSER = "grasp"
START_TIMEOUT = 30.0

#: Durability is off in tests: a crashed test server is thrown away, and fsync on each commit
#: would make the contract suite slow. Benchmarks pass ``durable=True`` to measure real commits.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says what to install or create."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` holding ``initdb`` and ``pg_ctl``
    (``$GRASP_TEST_PG_BINDIR`` wins)."""
    override = os.environ.get("GRASP_TEST_PG_BINDIR")
    candidates = (
        [Path(override)]
        if override
        else sorted(
            (p / "bin" for p in PG_ROOT.glob("*") if p.name.isdigit()),
            key=lambda p: int(p.parent.name),
            reverse=True,
        )
    )
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresUnavailable(
        f"no PostgreSQL server binaries in {PG_ROOT}/<version>/bin: "
        f"install Debian's '{DEBIAN_PACKAGE}' package (apt-get install {DEBIAN_PACKAGE})"
    )


def server_account() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as, or None to run as the current user."""
    if os.geteuid() != 0:
        return None
    names = (
        [os.environ["GRASP_TEST_PG_USER"]]
        if os.environ.get("GRASP_TEST_PG_USER")
        else [CI_USER, "postgres"]
    )
    for name in names:
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            continue
        if account.pw_uid != 0:
            return account
    raise PostgresUnavailable(
        f"running as root and none of {names} is an unprivileged user: PostgreSQL refuses to run "
        f"as root (create one: useradd --system --no-create-home {CI_USER})"
    )


def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in a temporary directory; ``start()``, ``dsn(db)``, ``stop()``."""

    durable: bool = False

    def __post_init__(self) -> None:
        self.bindir = find_bindir()
        self.account = server_account()
        self.password = secrets.token_hex(12)
        self.port = 0
        self.root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._names = count(1)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """initdb, start, wait until it accepts connections (deadline :data:`START_TIMEOUT`)."""
        self.root = Path(tempfile.mkdtemp(prefix="grasp-pg-"))
        try:
            self._initdb()
            self._launch()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _as_server_user(self, argv: list[str], *, die_with_us: bool = False) -> list[str]:
        """``argv`` run as the server account; ``die_with_us``: SIGTERM when we die first
        (a killed test run leaves no server behind)."""
        options = ["--pdeathsig", "TERM"] if die_with_us and shutil.which("setpriv") else []
        if self.account is not None:
            options += [
                f"--reuid={self.account.pw_uid}",
                f"--regid={self.account.pw_gid}",
                "--init-groups",
            ]
        return ["setpriv", *options, "--", *argv] if options else argv

    def _initdb(self) -> None:
        assert self.root is not None
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.account is not None:
            for path in (self.root, pwfile):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        argv = [
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]
        done = subprocess.run(
            self._as_server_user(argv), capture_output=True, text=True, cwd=self.root, check=False
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({done.returncode}): {done.stderr.strip()}")

    def _launch(self) -> None:
        self.port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        if not self.durable:
            settings.update(FAST_SETTINGS)
        argv = [str(self.bindir / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        try:
            self._process = subprocess.Popen(
                self._as_server_user(argv, die_with_us=True),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        finally:
            log.close()

    def _wait_ready(self) -> None:
        """Poll a real connection until it succeeds, the server dies, or the deadline passes."""
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise PostgresUnavailable(
                    f"postgres exited with {self._process.returncode}: {self.log_tail()}"
                )
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise PostgresUnavailable(
                        f"postgres not ready after {START_TIMEOUT:.0f} s: {exc}; {self.log_tail()}"
                    ) from exc
            time.sleep(0.05)

    def stop(self) -> None:
        """``pg_ctl stop -m fast``; kill our own process if that did not end it; remove files."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            argv = [
                str(self.bindir / "pg_ctl"),
                "stop",
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                "20",
            ]
            subprocess.run(
                self._as_server_user(argv), capture_output=True, check=False, cwd=self.root
            )
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                logger.warning("postgres %d ignored pg_ctl stop; killing it", process.pid)
                process.kill()
                process.wait(timeout=10)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- use ----------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "postgres.log"

    def log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def dsn(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) as the superuser."""
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (a copy of ``template`` when given); returns its name."""
        name = f"grasp_test_{next(self._names)}"
        source = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        self.admin(f"CREATE DATABASE {name}{source}")
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- pytest fixtures (imported by the conftest of the tests that use them) ---------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the session; skips (naming the Debian package) when none can start."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with server:
        yield server


@pytest.fixture()
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards. Yields its DSN."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.dsn(name)
    finally:
        postgres_server.drop_database(name)
