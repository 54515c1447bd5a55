"""What the relay is doing right now, for people: ``/status.json`` and the ``/status`` page.

:class:`StatusBoard` pulls from the live sources when asked (the actor system's
:class:`~actors.system.SyncStatus`, the purgatory counts, the sync-source connections) and keeps
the one thing nobody else remembers: a short ring of recent releases with how long each event
was held. Every source is a plain callable, so the board never reaches into the actors and is
trivial to feed in tests.

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
from grasp.relay.observe.status_page import CONTENT_SECURITY_POLICY, render_page
from grasp.relay.transport.http import STATUS_JSON_MOUNT

logger = logging.getLogger(__name__)

__all__ = ["StatusBoard"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]


class StatusBoard:
    """Collects the relay's live figures into one snapshot and serves it (S13, ARCHITECTURE §6)."""

    def __init__(
        self,
        *,
        sync_status: Callable[[], SyncStatus] | None = None,
        purgatory_counts: Callable[[], Mapping[str, int]] | None = None,
        sync_sources: Callable[[], Iterable[Any]] | None = None,
        max_releases: int = 50,
        clock: Callable[[], float] = time.time,
        json_url: str = STATUS_JSON_MOUNT,
        refresh_secs: float = 2.0,
        title: str = "GRASP relay status",
    ) -> None:
        self._sync_status = sync_status
        self._purgatory_counts = purgatory_counts
        self._sync_sources = sync_sources
        self._releases: deque[dict[str, Any]] = deque(maxlen=max_releases)
        self._lock = threading.Lock()
        self._clock = clock
        self._json_url = json_url
        self._refresh_ms = int(refresh_secs * 1000)
        self._title = title
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
            "sync": self._section("sync", self._sync_part),
            "purgatory": self._section("purgatory", self._purgatory_part),
            "releases": releases,
            "sync_sources": self._section("sync_sources", self._sources_part),
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

    def _purgatory_part(self) -> dict[str, Any]:
        counts = {str(k): int(v) for k, v in (self._purgatory_counts or dict)().items()}
        return {"counts": counts, "total": sum(counts.values())}

    def _sources_part(self) -> dict[str, Any]:
        connections = list(self._sync_sources()) if self._sync_sources else []
        return {"connections": [_plain_record(c) for c in connections]}

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
        """WSGI app for ``/status``: the page with the current numbers rendered in."""

        def app(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
            if not _readable(environ, start_response):
                return [b"method not allowed\n"]
            page = render_page(
                self.snapshot(),
                json_url=self._json_url,
                refresh_ms=self._refresh_ms,
                title=self._title,
            )
            return _send(
                environ,
                start_response,
                page.encode("utf-8"),
                "text/html; charset=utf-8",
                [
                    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
                    ("X-Content-Type-Options", "nosniff"),
                ],
            )

        return app


# What a section holds when its source failed: the page still has every key it renders.
_EMPTY: dict[str, dict[str, Any]] = {
    "sync": {"queue_size": None, "in_progress": None, "next_attempts": [], "domains": []},
    "purgatory": {"counts": {}, "total": None},
    "sync_sources": {"connections": []},
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
) -> list[bytes]:
    start_response(
        "200 OK",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *extra,
        ],
    )
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
