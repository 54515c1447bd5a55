"""What the relay is doing right now, for people: ``/status.json`` and the ``/status`` page.

:class:`StatusBoard` pulls from the live sources when asked (the actor system's
:class:`~actors.system.SyncStatus`, the purgatory counts, the sync-source connections) and keeps
the one thing nobody else remembers: a short ring of recent releases with how long each event
was held. Every source is a plain callable, so the board never reaches into the actors and is
trivial to feed in tests.

The sync history (S18.1) comes from the Scheduler with times relative to its answer; the board
turns them into wall-clock instants with its own clock, like every other time it shows.
``/status/<identifier>`` is one identifier's history alone.

A failing or slow source must not take the page down: each section carries its own ``error``
and the rest still renders. The snapshot is JSON-ready (finite numbers, plain scalars only) so
``/status.json`` is always valid JSON, even if a sync source reports something exotic.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from actors.system import SyncStatus
from grasp.relay.observe.history_view import HISTORY_PATH
from grasp.relay.observe.status_page import (
    CONTENT_SECURITY_POLICY,
    render_identifier_page,
    render_missing_identifier,
    render_page,
)
from grasp.relay.transport.http import STATUS_JSON_MOUNT
from messages.history import IdentifierHistory, SyncHistoryReport

logger = logging.getLogger(__name__)

__all__ = ["HISTORY_SHOWN", "StatusBoard"]

#: Identifiers ``/status`` shows (held first, most recently attempted first); any other one is
#: at ``/status/<identifier>``. Bounds what the page's script polls every 2 s: at most about
#: 130 KiB of JSON with 20 failed attempts each (scripts/bench/history.py).
HISTORY_SHOWN = 25

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]
#: ``history(None)``: the most relevant identifiers; ``history(identifier)``: that one.
HistorySource = Callable[[str | None], SyncHistoryReport]


class StatusBoard:
    """Collects the relay's live figures into one snapshot and serves it (S13, ARCHITECTURE §6)."""

    def __init__(
        self,
        *,
        sync_status: Callable[[], SyncStatus] | None = None,
        purgatory_counts: Callable[[], Mapping[str, int]] | None = None,
        sync_sources: Callable[[], Iterable[Any]] | None = None,
        sync_history: HistorySource | None = None,
        peers: Callable[[], Iterable[Any]] | None = None,
        max_releases: int = 50,
        clock: Callable[[], float] = time.time,
        json_url: str = STATUS_JSON_MOUNT,
        refresh_secs: float = 2.0,
        title: str = "GRASP relay status",
        node: str | None = None,
    ) -> None:
        self._sync_status = sync_status
        self._purgatory_counts = purgatory_counts
        self._sync_sources = sync_sources
        self._sync_history = sync_history
        self._peers = peers
        self._releases: deque[dict[str, Any]] = deque(maxlen=max_releases)
        self._lock = threading.Lock()
        self._clock = clock
        self._json_url = json_url
        self._refresh_ms = int(refresh_secs * 1000)
        #: This process's id in the cluster (S19.2: its leases and ledger slots carry it).
        self.node = node
        self._title = f"{title} (node {node})" if node else title
        self._last_errors: dict[str, str] = {}

    # -- feeding -------------------------------------------------------------------------------

    def record_release(
        self, event_id: str, kind: int, identifier: str, latency_secs: float | None
    ) -> None:
        """One event left purgatory after ``latency_secs`` held (None when unknown).

        Called from the release workflow on the Releaser's greenlet: cheap, and never raises.
        """
        try:
            entry = {
                "event_id": str(event_id),
                "kind": int(kind),
                "identifier": str(identifier),
                "latency_secs": _finite(latency_secs),
                "released_at": self._clock(),
            }
        except (TypeError, ValueError):
            logger.debug("ignored a malformed release record for %r", event_id, exc_info=True)
            return
        with self._lock:
            self._releases.appendleft(entry)

    # -- reading -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data (the ``/status.json`` body)."""
        with self._lock:
            releases = [dict(r) for r in self._releases]
        return {
            "generated_at": self._clock(),
            "node": self.node,
            "sync": self._section("sync", self._sync_part),
            "history": self._section("history", self._history_part),
            "purgatory": self._section("purgatory", self._purgatory_part),
            "releases": releases,
            "sync_sources": self._section("sync_sources", self._sources_part),
            "peers": self._section("peers", self._peers_part),
        }

    def _section(self, name: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            part = build()
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            # Pages poll every 2 s: say it once at WARNING, then quietly until it changes.
            level = logging.DEBUG if self._last_errors.get(name) == text else logging.WARNING
            logger.log(level, "status section %s unavailable: %s", name, text)
            self._last_errors[name] = text
            return {**_EMPTY[name], "error": text}
        self._last_errors.pop(name, None)
        return {**part, "error": None}

    def _sync_part(self) -> dict[str, Any]:
        if self._sync_status is None:
            raise LookupError("no actor system attached")
        status = self._sync_status()
        scheduler = status.scheduler
        return {
            "queue_size": int(scheduler.queue_size),
            "in_progress": int(scheduler.in_progress),
            "next_attempts": [
                {"identifier": str(identifier), "in_secs": _finite(secs)}
                for identifier, secs in scheduler.next_attempts
            ],
            "domains": [
                {
                    "domain": str(d.domain),
                    "in_flight": int(d.in_flight),
                    "queued": int(d.queued),
                    "window_used": int(d.window_used),
                    "max_concurrent": int(d.max_concurrent),
                    "max_per_window": int(d.max_per_window),
                }
                for d in status.domains
            ],
        }

    def _history_part(self) -> dict[str, Any]:
        if self._sync_history is None:
            raise LookupError("no actor system attached")
        report, now = self._sync_history(None), self._clock()
        return {
            "identifiers": [_history_entry(h, now) for h in report.identifiers],
            "total": int(report.total),
        }

    def identifier_snapshot(self, identifier: str) -> dict[str, Any] | None:
        """One identifier's history as ``/status.json`` shows it, or None when unknown."""
        if self._sync_history is None:
            raise LookupError("no actor system attached")
        report, now = self._sync_history(identifier), self._clock()
        return _history_entry(report.identifiers[0], now) if report.identifiers else None

    def _purgatory_part(self) -> dict[str, Any]:
        counts = {str(k): int(v) for k, v in (self._purgatory_counts or dict)().items()}
        return {"counts": counts, "total": sum(counts.values())}

    def _sources_part(self) -> dict[str, Any]:
        connections = list(self._sync_sources()) if self._sync_sources else []
        return {"connections": [_plain_record(c) for c in connections]}

    def _peers_part(self) -> dict[str, Any]:
        """S17.4: every peer's state, last error, events received, last reconciliation."""
        peers = list(self._peers()) if self._peers else []
        return {"peers": [_plain_record(p) for p in peers]}

    # -- serving -------------------------------------------------------------------------------

    def json_app(self) -> WSGIApp:
        """WSGI app for ``/status.json``."""

        def app(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
            if not _readable(environ, start_response):
                return [b"method not allowed\n"]
            body = json.dumps(self.snapshot(), allow_nan=False, separators=(",", ":")).encode()
            return _send(environ, start_response, body, "application/json", [])

        return app

    def html_app(self) -> WSGIApp:
        """WSGI app for ``/status``: the page with the current numbers rendered in, and
        ``/status/<identifier>``: one identifier's sync history (S18.1)."""

        def app(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
            if not _readable(environ, start_response):
                return [b"method not allowed\n"]
            identifier = _identifier_of(environ.get("PATH_INFO") or "")
            if identifier:
                return self._identifier_page(environ, start_response, identifier)
            page = render_page(
                self.snapshot(),
                json_url=self._json_url,
                refresh_ms=self._refresh_ms,
                title=self._title,
            )
            return _send_html(environ, start_response, page)

        return app

    def _identifier_page(
        self, environ: dict, start_response: StartResponse, identifier: str
    ) -> list[bytes]:
        title = self._title
        try:
            entry = self.identifier_snapshot(identifier)
        except Exception as exc:
            logger.warning("sync history of %r unavailable: %r", identifier, exc)
            page = render_missing_identifier(identifier, f"unavailable: {exc!r}", title=title)
            return _send_html(environ, start_response, page, "503 Service Unavailable")
        if entry is None:
            reason = "not queued, and no sync attempt is recorded for it"
            page = render_missing_identifier(identifier, reason, title=title)
            return _send_html(environ, start_response, page, "404 Not Found")
        page = render_identifier_page(entry, now=self._clock(), title=title)
        return _send_html(environ, start_response, page)


def _identifier_of(path: str) -> str | None:
    """The identifier of ``/status/<identifier>``: PATH_INFO is percent-decoded once by the
    server and carries the bytes as latin-1; identifiers are UTF-8 (S10.4)."""
    if not path.startswith(HISTORY_PATH) or len(path) == len(HISTORY_PATH):
        return None
    raw = path[len(HISTORY_PATH) :]
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _history_entry(h: IdentifierHistory, now: float) -> dict[str, Any]:
    """JSON-ready, with wall-clock instants (the actors' times are relative to their answer)."""

    def at(ago: float | None) -> float | None:
        return None if ago is None else _finite(now - ago)

    return {
        "identifier": str(h.identifier),
        "state": str(h.state),
        "attempt_count": int(h.attempt_count),
        "next_attempt_at": None if h.next_attempt_in is None else _finite(now + h.next_attempt_in),
        "requests": int(h.requests),
        "urls": [
            {
                "url": str(u.url),
                "attempts": int(u.attempts),
                "outcome": str(u.outcome),
                "reason": u.reason,
                "detail": str(u.detail),
                "missing": int(u.missing),
                "last_at": at(u.ago),
                "permanent": bool(u.permanent),
            }
            for u in h.urls
        ],
        "attempts": [
            {
                "started_at": at(a.ago),
                "url": str(a.url),
                "path": "main" if a.queue is None else f"queue {a.queue}",
                "outcome": str(a.outcome),
                "reason": a.reason,
                "detail": str(a.detail),
                "fetched": int(a.fetched),
                "missing": int(a.missing),
                "released": int(a.released),
                "bytes": a.pack_bytes,
                "seconds": _finite(a.seconds),
            }
            for a in h.attempts
        ],
    }


# What a section holds when its source failed: the page still has every key it renders.
_EMPTY: dict[str, dict[str, Any]] = {
    "sync": {"queue_size": None, "in_progress": None, "next_attempts": [], "domains": []},
    "history": {"identifiers": [], "total": None},
    "purgatory": {"counts": {}, "total": None},
    "sync_sources": {"connections": []},
    "peers": {"peers": []},
}


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def _plain(value: Any) -> Any:
    """A JSON scalar for any value a sync source might report."""
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return _finite(value)
    return str(value)


def _plain_record(record: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        record = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    return {str(k): _plain(v) for k, v in dict(record).items()}


def _readable(environ: dict, start_response: StartResponse) -> bool:
    if environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD"):
        return True
    start_response(
        "405 Method Not Allowed", [("Content-Type", "text/plain"), ("Allow", "GET, HEAD, OPTIONS")]
    )
    return False


def _send(
    environ: dict,
    start_response: StartResponse,
    body: bytes,
    content_type: str,
    extra: list[tuple[str, str]],
    status: str = "200 OK",
) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *extra,
        ],
    )
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def _send_html(
    environ: dict, start_response: StartResponse, page: str, status: str = "200 OK"
) -> list[bytes]:
    headers = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
    ]
    body = page.encode("utf-8")
    return _send(environ, start_response, body, "text/html; charset=utf-8", headers, status)
