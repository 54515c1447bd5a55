"""Assembling a running relay from a Config: data dir, event store, hub, app, listening socket.

Each step is its own function so the later process wiring (actors, GRASP policy, git serving) can
reuse them and swap one part — typically the write policy and the mounts — without copying the
rest. Startup failures become :class:`StartupError` with a one-line message for the CLI.

Order matters: the data directory and the store are checked before the port is bound, and the
socket is bound before the app is built, because ``--port 0`` is only resolved by binding and the
NIP-11 document names the relay's real authority.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import gevent.pool
from gevent.pywsgi import LoggingLogAdapter
from wsproto.frame_protocol import CloseReason

from grasp.admission.intake import WritePolicy
from grasp.nostr.event import Event
from grasp.relay.config import Config
from grasp.relay.transport.connection import WebSocketConnection, WebSocketLimits
from grasp.relay.transport.http import MountKey, RelayApp, WSGIApp
from grasp.relay.transport.hub import SubscriptionHub
from grasp.relay.transport.nip11 import relay_information
from grasp.relay.transport.session import Nip01Session, SessionContext, SessionLimits
from grasp.relay.transport.websocket import RelayWSGIServer
from grasp.store.base import EventStore, StoreError
from grasp.store.sqlite import DEFAULT_FILENAME

logger = logging.getLogger(__name__)

#: Builds the write policy once the store and hub exist (the default: save and broadcast).
#: Builds the write policy from the store and the hub's ``publish``.
PolicyFactory = Callable[[EventStore, Callable[[Event], object]], WritePolicy]


class StartupError(RuntimeError):
    """The relay cannot start; ``str(exc)`` is one line for ``grasp-relay: error: ...``."""


def prepare_data_dir(path: Path) -> Path:
    """Create the data directory if needed and prove it is a writable directory."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(
            f"data directory {str(path)!r} is not usable: {exc.strerror or exc}"
        ) from exc
    return path


def open_store(data_dir: Path, database: str | None = None) -> EventStore:
    """The event store (S11.1, S19.1): ``database`` (``postgresql://…`` or a SQLite file), by
    default ``<data-dir>/events.sqlite3``. Any failure (a server that does not answer, a bad
    password, a newer schema) is one StartupError line, with the password left out."""
    from grasp.store import open_store as open_engine

    target: str | Path = database if database is not None else data_dir / DEFAULT_FILENAME
    try:
        return open_engine(target)
    except StoreError as exc:
        raise StartupError(_one_line(str(exc))) from exc
    except OSError as exc:
        raise StartupError(
            f"cannot open event store {str(target)!r}: {exc.strerror or exc}"
        ) from exc


def _one_line(text: str) -> str:
    """libpq's messages span lines; the CLI's contract is one line (S12)."""
    return " ".join(text.split())


def listen(config: Config) -> RelayWSGIServer:
    """Bind the listening socket (not yet accepting); a busy port is a StartupError."""
    server = RelayWSGIServer(
        (config.host, config.port),
        application=None,
        spawn=gevent.pool.Pool(),
        log=LoggingLogAdapter(logging.getLogger("grasp.relay.access"), logging.DEBUG),
        error_log=LoggingLogAdapter(logging.getLogger("grasp.relay.http"), logging.ERROR),
        # Skip pywsgi's reverse DNS lookup of the listen address at startup.
        environ={"SERVER_NAME": config.host},
    )
    try:
        server.init_socket()
    except OSError as exc:
        raise StartupError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from exc
    return server


def websocket_limits(config: Config) -> WebSocketLimits:
    return WebSocketLimits(max_message_bytes=config.max_message_bytes)


def session_limits(config: Config) -> SessionLimits:
    return SessionLimits(
        max_subscriptions=config.max_subscriptions,
        max_limit=config.max_limit,
        max_events_per_minute=config.event_rate_limit,
    )


def build_app(
    config: Config,
    context: SessionContext,
    *,
    mounts: Mapping[MountKey, WSGIApp] | None = None,
    limits: WebSocketLimits | None = None,
) -> RelayApp:
    """The WSGI app: NIP-01 sessions over ``context``, NIP-11 from ``config``, and the mounts."""

    def new_session(connection: WebSocketConnection) -> Nip01Session:
        return Nip01Session(connection, context, peer=f"{connection.id} {connection.peer}")

    return RelayApp(
        info=relay_information(config),
        session_factory=new_session,
        websocket_limits=limits or websocket_limits(config),
        mounts=mounts,
    )


@dataclass
class Relay:
    """A bound relay: call :meth:`start`, later :meth:`shutdown`."""

    config: Config
    store: EventStore
    hub: SubscriptionHub
    app: RelayApp
    server: RelayWSGIServer

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def http_url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    def publish(self, event: Event) -> int:
        """Notify live subscribers of an event that became servable (the Releaser's callback)."""
        return self.hub.publish(event)

    def start(self) -> None:
        self.server.start()
        logger.info(
            "relay serving %s (domain %s, data %s)",
            self.http_url,
            self.config.public_domain,
            self.config.data_dir.resolve(),
        )

    def stop_serving(self, timeout: float = 5.0) -> int:
        """Stop accepting, close websockets with 1001 and wait for them (bounded).

        Returns how many websocket connections were closed. The store stays open: the process
        wiring persists purgatory and stops the actors before :meth:`close`.
        """
        self.server.close()
        connections = list(self.server.websocket_connections)
        for connection in connections:
            connection.close(CloseReason.GOING_AWAY, "relay shutting down")
        deadline = time.monotonic() + timeout
        if not self.server.websocket_connections.wait_empty(timeout):
            logger.warning(
                "%d websocket connections did not close in %g s; killing them",
                len(self.server.websocket_connections),
                timeout,
            )
        self.server.stop(timeout=max(deadline - time.monotonic(), 0.1))
        return len(connections)

    def close(self) -> None:
        self.store.close()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop serving, then close the store."""
        closed = self.stop_serving(timeout)
        self.close()
        logger.info("relay stopped (%d websocket connections closed)", closed)
