"""Connection pools that connect only to policy-checked, pinned addresses (S3.4).

:class:`PinnedPoolManager` connects every request for a host to the address the URL policy
checked, while the ``Host`` header, TLS SNI and certificate verification keep using the host
name. A host first seen in a redirect is resolved and checked here too, so a redirect to a
refused address fails with ``FetchError("policy")`` before any connection is made. No proxy is
ever used (a proxy would connect elsewhere than the checked address). Kept apart from the git
client (:mod:`grasp.git.http_client`), which only asks for a manager.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from grasp.git.url_policy import FetchPolicy, Resolver, check_url_syntax, pin_address

logger = logging.getLogger(__name__)

USER_AGENT = "grasp-purgatory-sync (dulwich)"

__all__ = ["USER_AGENT", "PinnedPoolManager", "make_pool_manager"]


class _PinnedConnectionMixin:
    """Connect to ``pinned_address`` instead of resolving ``host`` again."""

    def __init__(self, *args: Any, pinned_address: str, **kwargs: Any) -> None:
        self.pinned_address = pinned_address
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        target = f"{conn.host} ({self.pinned_address})"
        try:
            return _connect_literal(
                self.pinned_address,
                conn.port,
                conn.timeout,
                conn.source_address,
                conn.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(conn, f"connection to {target} timed out") from exc
        except OSError as exc:
            raise NewConnectionError(conn, f"cannot connect to {target}: {exc}") from exc


def _connect_literal(
    address: str, port: int, timeout: Any, source: Any, options: Any
) -> socket.socket:
    """Connect to the IP literal ``address`` without ``getaddrinfo``.

    urllib3's ``create_connection`` resolves even a literal, and under gevent every resolution
    is a round trip through the resolver's thread pool (~7 % of the relay's samples while
    syncing, P6 of issue 16); the pinned address is always a literal (url_policy).
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in options or ():
            sock.setsockopt(*option)
        if timeout is not _DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        if source:
            sock.bind(source)
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


class PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class PinnedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = PinnedHTTPConnection


class PinnedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection


class PinnedPoolManager(urllib3.PoolManager):
    """A PoolManager whose pools connect to policy-checked, pinned addresses only.

    ``pins`` maps ``(scheme, host, port)`` to an address that was already checked (so the first
    host is not resolved twice); other hosts are resolved and checked when first used.
    """

    def __init__(
        self,
        policy: FetchPolicy,
        pins: dict[tuple[str, str, int], str] | None = None,
        *,
        resolve: Resolver | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.pins = dict(pins or {})
        self._resolve = resolve
        self.pool_classes_by_scheme = {
            "http": PinnedHTTPConnectionPool,
            "https": PinnedHTTPSConnectionPool,
        }

    def _new_pool(
        self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None
    ) -> HTTPConnectionPool:
        key = (scheme.lower(), host.lower().strip("[]"), port)
        address = self.pins.get(key)
        if address is None:
            display = f"{key[0]}://{host}:{port}/"
            check_url_syntax(display, self.policy)
            address = pin_address(display, key[1], port, self.policy, resolve=self._resolve)
            logger.debug("pinned %s to %s", display, address)
            self.pins[key] = address
        context = dict(request_context if request_context is not None else self.connection_pool_kw)
        context["pinned_address"] = address
        return super()._new_pool(scheme, host, port, request_context=context)


def make_pool_manager(
    policy: FetchPolicy,
    pins: dict[tuple[str, str, int], str],
    *,
    read_timeout: float,
    resolve: Resolver | None = None,
) -> PinnedPoolManager:
    """A pinned manager with per-read timeouts, no retries, and at most 5 redirects."""
    return PinnedPoolManager(
        policy,
        pins,
        resolve=resolve,
        timeout=urllib3.Timeout(connect=read_timeout, read=read_timeout),
        retries=urllib3.Retry(total=5, connect=0, read=0, status=0, other=0, redirect=5),
        headers={"User-Agent": USER_AGENT},
    )
