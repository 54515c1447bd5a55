"""HTTP client for remote fetches: dulwich's urllib3 client, pinned, bounded and observable.

* :class:`PinnedPoolManager` connects every request for a host to the address the URL policy
  checked (S3.4), while the ``Host`` header, TLS SNI and certificate verification keep using the
  host name.  A host first seen in a redirect is resolved and checked here too, so a redirect to
  a refused address fails with ``FetchError("policy")`` before any connection is made.  No proxy
  is ever used (a proxy would connect elsewhere than the checked address).
* :class:`GraspHttpGitClient` is dulwich's ``Urllib3HttpGitClient`` with four changes:
  non-200 statuses raise :class:`HttpStatusError` carrying the status (dulwich folds them into a
  message string); a discovery reply that is not smart HTTP is refused (dulwich would fall back
  to the "dumb" protocol, which downloads objects one by one into memory); every byte read from
  any response is charged to a :class:`ByteBudget` (the S7.2 size cap, which also bounds
  oversized ref advertisements) that yields to the gevent hub regularly; and the first bytes of
  each POST response are kept, because dulwich reports a refused ``want`` as a bare "remote
  server unexpectedly closed the connection" although the server named the object in an
  ``ERR`` pkt-line (see :func:`refused_oids`).
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import urllib3
from dulwich.client import Urllib3HttpGitClient
from dulwich.errors import GitProtocolError
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from grasp.git.url_policy import FetchPolicy, Resolver, check_url_syntax, pin_address

logger = logging.getLogger(__name__)

USER_AGENT = "grasp-purgatory-sync (dulwich)"
_HEAD_KEEP = 8 * 1024
_ERR_OID = re.compile(rb"\b([0-9a-f]{40})\b")


class TooLarge(Exception):
    """More bytes arrived than the fetch's ``max_bytes`` allows."""


class NotSmartHttp(GitProtocolError):
    """The server answered the discovery request without a smart-HTTP content type."""


class HttpStatusError(GitProtocolError):
    """A non-200 HTTP status, kept as a number so callers need not parse messages."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(f"HTTP {status} for {url}")
        self.url = url
        self.status = status


class ByteBudget:
    """Counts bytes received by one fetch, enforces the cap and keeps the hub responsive.

    A fast server keeps the socket readable, so gevent never has to wait and the parsing
    greenlet could run for seconds without a switch; ``charge`` therefore yields to the hub at
    least every ``yield_interval`` seconds (S7.4).
    """

    def __init__(self, max_bytes: int, *, yield_interval: float = 0.02) -> None:
        self.max_bytes = max_bytes
        self.received = 0
        self._yield_interval = yield_interval
        self._last_yield = time.monotonic()

    def charge(self, nbytes: int) -> None:
        self.received += nbytes
        if self.received > self.max_bytes:
            raise TooLarge(f"received more than {self.max_bytes} bytes")
        now = time.monotonic()
        if now - self._last_yield >= self._yield_interval:
            gevent.sleep(0)
            self._last_yield = time.monotonic()


class _PinnedConnectionMixin:
    """Connect to ``pinned_address`` instead of resolving ``host`` again."""

    def __init__(self, *args: Any, pinned_address: str, **kwargs: Any) -> None:
        self.pinned_address = pinned_address
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        target = f"{conn.host} ({self.pinned_address})"
        try:
            return urllib3.util.connection.create_connection(
                (self.pinned_address, conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(conn, f"connection to {target} timed out") from exc
        except OSError as exc:
            raise NewConnectionError(conn, f"cannot connect to {target}: {exc}") from exc


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


class _ResponseTap:
    """Wraps a response's read function: charges the budget and keeps the first bytes."""

    def __init__(self, read: Callable[[int], bytes], budget: ByteBudget, keep: int) -> None:
        self._read = read
        self._budget = budget
        self._keep = keep
        self.head = b""

    def read(self, size: int) -> bytes:
        data = self._read(size)
        if len(self.head) < self._keep:
            self.head += data[: self._keep - len(self.head)]
        self._budget.charge(len(data))
        return data


class GraspHttpGitClient(Urllib3HttpGitClient):
    """dulwich's HTTP client, pinned and bounded; see the module docstring."""

    def __init__(self, base_url: str, pool_manager: PinnedPoolManager, budget: ByteBudget) -> None:
        super().__init__(base_url, pool_manager=pool_manager, config=None)
        self.budget = budget
        self._post_taps: list[_ResponseTap] = []

    def _http_request(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        data: bytes | Iterator[bytes] | None = None,
        raise_for_status: bool = True,
    ) -> tuple[Any, Callable[[int], bytes]]:
        resp, read = super()._http_request(url, headers, data, raise_for_status=False)
        if raise_for_status and resp.status != 200:
            resp.close()
            raise HttpStatusError(url, resp.status)
        if data is None and "info/refs" in url:
            content_type = resp.headers.get("Content-Type") or ""
            if not content_type.startswith("application/x-git-"):
                resp.close()
                raise NotSmartHttp(
                    f"{url} is not a smart-HTTP git server (Content-Type {content_type!r})"
                )
        tap = _ResponseTap(read, self.budget, _HEAD_KEEP if data is not None else 0)
        if data is not None:
            self._post_taps.append(tap)
        return resp, tap.read

    def start_attempt(self) -> None:
        """Forget the responses of the previous attempt."""
        self._post_taps.clear()

    def server_errors(self) -> list[bytes]:
        """``ERR`` and side-band error messages in this attempt's POST responses."""
        return [msg for tap in self._post_taps for msg in _error_messages(tap.head)]


def refused_oids(messages: list[bytes], candidates: set[str]) -> set[str]:
    """The candidate OIDs that the server's error messages name (e.g. "not our ref <oid>")."""
    named = {m.decode("ascii") for msg in messages for m in _ERR_OID.findall(msg)}
    return named & candidates


def _error_messages(head: bytes) -> Iterator[bytes]:
    """Parse pkt-lines from the start of a response and yield the error ones."""
    pos = 0
    while pos + 4 <= len(head):
        try:
            size = int(head[pos : pos + 4], 16)
        except ValueError:
            return
        if size < 4:  # flush / delimiter / response-end packets
            pos += 4
            continue
        payload = head[pos + 4 : pos + size]
        if payload.startswith(b"ERR "):
            yield payload[4:].rstrip(b"\n")
        elif payload[:1] == b"\x03":  # side-band channel 3: fatal error text
            yield payload[1:].rstrip(b"\n")
        pos += size
