"""Prometheus metrics of the purgatory sync, fed by the actors' observer hooks (S13.1).

:class:`SyncMetrics` is the :class:`~actors.observer.SyncObserver` the relay passes to
``actors.system.start(..., observer=...)``. It owns a *private* ``CollectorRegistry``: the global
one would make a second relay in the same process (every test that starts two) fail with
"Duplicated timeseries" (python-ecosystem.md §5). ``wsgi_app()`` serves that registry at
``/metrics``.

Why the hooks are guarded: they run on actor greenlets, so an exception here would kill the
Scheduler or a DomainThrottle (the actors let a raising observer crash them, as any bug). A broken
metric must cost one ERROR line with its traceback per hook — a bug to fix, visible once, not a
log flood at the rate of ticks — never the sync. They are also cheap (a dict lookup and an add)
because the Scheduler calls them on every tick.

Label values come from the outside world: domains from clone URLs anyone may announce, error
reasons from exception names. Each label keeps at most a fixed number of distinct values and
folds the rest into ``_other``, so a flood of announcements cannot grow the registry without
bound.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric

from actors.observer import SyncObserver
from messages.releaser import ProcessResult

logger = logging.getLogger(__name__)

__all__ = ["FETCH_SECONDS_BUCKETS", "OVERFLOW_LABEL", "UNKNOWN_LABEL", "SyncMetrics"]

#: A fetch ranges from a fast local-network round trip to the fetch deadline (minutes).
FETCH_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: Where label values beyond a label's cap are counted.
OVERFLOW_LABEL = "_other"
#: Stands for an empty label value (Prometheus treats "" as "label absent").
UNKNOWN_LABEL = "_unknown"

CountsFn = Callable[[], Mapping[str, int]]
F = TypeVar("F", bound=Callable[..., None])


def _never_raises(hook: F) -> F:
    """Run an observer hook so that no failure reaches the actor that called it; the first
    failure of each hook is logged with its traceback, later ones at DEBUG."""

    @functools.wraps(hook)
    def guarded(self: Any, *args: Any) -> None:
        try:
            hook(self, *args)
        except Exception:
            failed: set[str] = self._failed_hooks
            if hook.__name__ in failed:
                logger.debug("metrics hook %s%r failed again", hook.__name__, args, exc_info=True)
            else:
                failed.add(hook.__name__)
                logger.exception(
                    "metrics hook %s%r failed (later failures at DEBUG)", hook.__name__, args
                )

    return guarded  # type: ignore[return-value]


class _LabelCap:
    """Admits at most ``limit`` distinct values of one label; later new values become ``_other``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        text = str(value) if value not in (None, "") else UNKNOWN_LABEL
        if text in self._seen:
            return text
        with self._lock:
            if len(self._seen) < self._limit:
                self._seen.add(text)
                return text
        logger.debug("label value %r folded into %s (cap %d)", text, OVERFLOW_LABEL, self._limit)
        return OVERFLOW_LABEL


class _PurgatoryEvents:
    """``purgatory_events{kind}``: read from the purgatory store at scrape time, never cached."""

    NAME = "purgatory_events"
    HELP = "Events held in purgatory, by kind (30617, 30618, 1618, 1619, placeholder)."

    def __init__(self, counts: CountsFn | None) -> None:
        self._counts = counts

    def describe(self) -> Iterable[Metric]:
        # Registration calls describe(); answering without samples keeps the store out of it.
        return [GaugeMetricFamily(self.NAME, self.HELP, labels=["kind"])]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["kind"])
        if self._counts is not None:
            try:
                for kind, count in sorted(self._counts().items()):
                    family.add_metric([str(kind)], float(count))
            except Exception:
                # A scrape must still answer; the other metrics are worth having.
                logger.warning("purgatory counts unavailable for %s", self.NAME, exc_info=True)
        yield family


class SyncMetrics(SyncObserver):
    """S13.1's metrics, updated by the actors' hooks and by :meth:`event_released`."""

    def __init__(
        self,
        purgatory_counts: CountsFn | None = None,
        *,
        max_domains: int = 500,
        max_reasons: int = 50,
        fetch_buckets: tuple[float, ...] = FETCH_SECONDS_BUCKETS,
    ) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._failed_hooks: set[str] = set()  # hooks whose failure was logged with a traceback
        self._domain = _LabelCap(max_domains)
        self._reason = _LabelCap(max_reasons)
        self.queue_size_gauge = Gauge(
            "purgatory_sync_queue_size", "Identifiers in the sync queue.", registry=registry
        )
        self.attempts_total = Counter(
            "purgatory_sync_attempts",
            "Main-path sync attempts the Scheduler started.",
            registry=registry,
        )
        self.oids_fetched_total = Counter(
            "purgatory_sync_oids_fetched",
            "Git objects fetched from remote servers.",
            registry=registry,
        )
        self.in_flight_gauge = Gauge(
            "purgatory_domain_in_flight",
            "Requests running against a remote domain.",
            ["domain"],
            registry=registry,
        )
        self.requests_total = Counter(
            "purgatory_domain_requests",
            "Requests made to a remote domain (ended, any outcome).",
            ["domain"],
            registry=registry,
        )
        self.released_total = Counter(
            "purgatory_released",
            "Events released from purgatory, by kind.",
            ["kind"],
            registry=registry,
        )
        self.fetch_seconds = Histogram(
            "purgatory_fetch_seconds",
            "Duration of one request to a remote git server.",
            buckets=fetch_buckets,
            registry=registry,
        )
        self.fetch_errors_total = Counter(
            "purgatory_fetch_errors",
            "Failed requests to remote git servers, by reason.",
            ["reason"],
            registry=registry,
        )
        registry.register(_PurgatoryEvents(purgatory_counts))

    # -- SyncObserver hooks (called on actor greenlets) ----------------------------------------

    @_never_raises
    def queue_size(self, size: int) -> None:
        self.queue_size_gauge.set(size)

    @_never_raises
    def sync_attempt(self, identifier: str) -> None:
        self.attempts_total.inc()

    @_never_raises
    def fetch_done(
        self, domain: str, seconds: float, oids_fetched: int, error_reason: str | None
    ) -> None:
        self.requests_total.labels(self._domain(domain)).inc()
        if math.isfinite(seconds) and seconds >= 0:
            self.fetch_seconds.observe(seconds)
        if oids_fetched > 0:
            self.oids_fetched_total.inc(oids_fetched)
        if error_reason is not None:
            self.fetch_errors_total.labels(self._reason(error_reason)).inc()

    @_never_raises
    def throttle_changed(self, domain: str, in_flight: int, queued: int, window_used: int) -> None:
        self.in_flight_gauge.labels(self._domain(domain)).set(in_flight)

    def sync_finished(self, identifier: str, complete: bool) -> None:
        """Not a metric of its own: attempts and fetches already tell the story."""

    def released(self, identifier: str, result: ProcessResult) -> None:
        """Counted per event by :meth:`event_released`, where the kind is known."""

    # -- called by the release workflow ---------------------------------------------------------

    @_never_raises
    def event_released(self, event_kind: int) -> None:
        """One event of ``event_kind`` left purgatory (``purgatory_released_total{kind}``)."""
        self.released_total.labels(str(int(event_kind))).inc()

    # -- serving -----------------------------------------------------------------------------

    def wsgi_app(self) -> Callable[..., Iterable[bytes]]:
        """The ``/metrics`` WSGI app over this
        instance's registry (text format, gzip on request)."""
        return make_wsgi_app(self.registry)
