"""S13.1 metrics: names, types and labels as scraped, values that follow the hooks, private
registries, and hooks that never hurt the actor calling them."""

from __future__ import annotations

import gzip
from wsgiref.util import setup_testing_defaults

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from actors.clock import FakeClock
from actors.config import SyncConfig
from actors.fakes import MockSyncContext
from grasp.relay.observe.metrics import OVERFLOW_LABEL, UNKNOWN_LABEL, SyncMetrics
from tests.support.actor_harness import Harness

# name -> (type, label names) as S13.1 lists them
S13_1 = {
    "purgatory_sync_queue_size": ("gauge", set()),
    "purgatory_sync_attempts": ("counter", set()),
    "purgatory_sync_oids_fetched": ("counter", set()),
    "purgatory_domain_in_flight": ("gauge", {"domain"}),
    "purgatory_domain_requests": ("counter", {"domain"}),
    "purgatory_events": ("gauge", {"kind"}),
    "purgatory_released": ("counter", {"kind"}),
    "purgatory_fetch_seconds": ("histogram", set()),
    "purgatory_fetch_errors": ("counter", {"reason"}),
}


def scrape(metrics: SyncMetrics, accept_gzip: bool = False) -> tuple[str, dict, str]:
    """GET /metrics through the WSGI app: (status, headers, body text)."""
    environ: dict = {"PATH_INFO": "/metrics", "REQUEST_METHOD": "GET"}
    if accept_gzip:
        environ["HTTP_ACCEPT_ENCODING"] = "gzip"
    setup_testing_defaults(environ)
    seen: dict = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(metrics.wsgi_app()(environ, start_response))
    if seen["headers"].get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return seen["status"], seen["headers"], body.decode()


def families(metrics: SyncMetrics) -> dict:
    status, _, text = scrape(metrics)
    assert status.startswith("200")
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(metrics: SyncMetrics, sample_name: str, **labels: str) -> float | None:
    """The value of one sample, or None when the scrape does not hold it."""
    for family in families(metrics).values():
        for sample in family.samples:
            if sample.name == sample_name and sample.labels == labels:
                return sample.value
    return None


def drive_every_hook(metrics: SyncMetrics) -> None:
    metrics.queue_size(4)
    metrics.sync_attempt("repo")
    metrics.fetch_done("a.example", 0.3, 2, None)
    metrics.fetch_done("b.example", 1.2, 0, "timeout")
    metrics.throttle_changed("a.example", 1, 0, 1)
    metrics.event_released(30618)
    metrics.sync_finished("repo", True)


def test_s13_1_every_metric_is_scraped_with_its_type_and_labels():
    metrics = SyncMetrics(lambda: {"30617": 1, "30618": 2, "1618": 0, "1619": 0, "placeholder": 1})
    drive_every_hook(metrics)
    scraped = families(metrics)
    for name, (kind, label_names) in S13_1.items():
        assert name in scraped, name
        assert scraped[name].type == kind, name
        for sample in scraped[name].samples:
            assert set(sample.labels) - {"le"} == label_names, sample
    # The exposed sample names are the seed's (counters carry the _total suffix).
    sample_names = {s.name for f in scraped.values() for s in f.samples}
    assert {
        "purgatory_sync_attempts_total",
        "purgatory_sync_oids_fetched_total",
        "purgatory_domain_requests_total",
        "purgatory_released_total",
        "purgatory_fetch_errors_total",
        "purgatory_fetch_seconds_bucket",
        "purgatory_fetch_seconds_count",
        "purgatory_sync_queue_size",
    } <= sample_names


def test_s13_1_values_follow_the_hooks():
    metrics = SyncMetrics()
    metrics.queue_size(5)
    metrics.queue_size(2)
    assert value(metrics, "purgatory_sync_queue_size") == 2
    for _ in range(3):
        metrics.sync_attempt("repo")
    assert value(metrics, "purgatory_sync_attempts_total") == 3

    metrics.fetch_done("a.example", 0.2, 5, None)
    metrics.fetch_done("a.example", 3.0, 1, None)
    metrics.fetch_done("b.example", 40.0, 0, "timeout")
    metrics.fetch_done("b.example", 0.01, 0, "HTTP 404")
    assert value(metrics, "purgatory_domain_requests_total", domain="a.example") == 2
    assert value(metrics, "purgatory_domain_requests_total", domain="b.example") == 2
    assert value(metrics, "purgatory_sync_oids_fetched_total") == 6
    assert value(metrics, "purgatory_fetch_errors_total", reason="timeout") == 1
    assert value(metrics, "purgatory_fetch_errors_total", reason="HTTP 404") == 1
    assert value(metrics, "purgatory_fetch_seconds_count") == 4
    assert value(metrics, "purgatory_fetch_seconds_sum") == pytest.approx(43.21)
    assert value(metrics, "purgatory_fetch_seconds_bucket", le="0.25") == 2
    assert value(metrics, "purgatory_fetch_seconds_bucket", le="5.0") == 3
    assert value(metrics, "purgatory_fetch_seconds_bucket", le="+Inf") == 4

    metrics.throttle_changed("a.example", 2, 3, 4)
    metrics.throttle_changed("a.example", 1, 0, 4)
    metrics.throttle_changed("b.example", 2, 0, 2)
    assert value(metrics, "purgatory_domain_in_flight", domain="a.example") == 1
    assert value(metrics, "purgatory_domain_in_flight", domain="b.example") == 2

    for kind in (30618, 30618, 1618):
        metrics.event_released(kind)
    assert value(metrics, "purgatory_released_total", kind="30618") == 2
    assert value(metrics, "purgatory_released_total", kind="1618") == 1


def test_s13_1_purgatory_events_is_read_from_the_store_at_scrape_time():
    counts = {"30617": 0, "30618": 3, "1618": 1, "1619": 0, "placeholder": 2}
    metrics = SyncMetrics(lambda: dict(counts))
    assert value(metrics, "purgatory_events", kind="30618") == 3
    assert value(metrics, "purgatory_events", kind="placeholder") == 2
    counts["30618"] = 7
    assert value(metrics, "purgatory_events", kind="30618") == 7


def test_s13_1_two_instances_do_not_collide_and_leave_the_global_registry_alone():
    global_before = {f.name for f in REGISTRY.collect()}
    first, second = SyncMetrics(lambda: {"30618": 1}), SyncMetrics(lambda: {"30618": 9})
    first.queue_size(11)
    second.queue_size(22)
    first.event_released(1619)
    assert value(first, "purgatory_sync_queue_size") == 11
    assert value(second, "purgatory_sync_queue_size") == 22
    assert value(first, "purgatory_events", kind="30618") == 1
    assert value(second, "purgatory_events", kind="30618") == 9
    assert value(second, "purgatory_released_total", kind="1619") is None
    assert {f.name for f in REGISTRY.collect()} == global_before


def test_hooks_never_raise_and_a_failing_store_still_leaves_a_scrape(caplog):
    def broken_counts():
        raise RuntimeError("store is gone")

    metrics = SyncMetrics(broken_counts)
    metrics.fetch_done("a.example", float("nan"), -3, None)  # nonsense in, nothing out
    metrics.queue_size(None)  # type: ignore[arg-type]
    metrics.queue_size(None)  # type: ignore[arg-type]
    failures = [r for r in caplog.records if r.getMessage().startswith("metrics hook queue_size")]
    assert [r.levelname for r in failures] == ["ERROR"]  # once per hook, with its traceback
    assert failures[0].exc_info is not None
    metrics.event_released("not a kind")  # type: ignore[arg-type]
    metrics.throttle_changed("a.example", "many", 0, 0)  # type: ignore[arg-type]
    scraped = families(metrics)
    assert scraped["purgatory_events"].samples == []
    assert value(metrics, "purgatory_domain_requests_total", domain="a.example") == 1
    assert value(metrics, "purgatory_fetch_seconds_count") == 0
    assert value(metrics, "purgatory_sync_oids_fetched_total") == 0


def test_label_values_are_capped_so_hostile_announcements_cannot_grow_the_registry():
    metrics = SyncMetrics(max_domains=2, max_reasons=1)
    for domain in ("a.example", "b.example", "c.example", "d.example", "a.example"):
        metrics.fetch_done(domain, 0.1, 0, None)
    metrics.fetch_done("", 0.1, 0, "timeout")
    metrics.fetch_done("e.example", 0.1, 0, "refused")
    assert value(metrics, "purgatory_domain_requests_total", domain="a.example") == 2
    assert value(metrics, "purgatory_domain_requests_total", domain="b.example") == 1
    assert value(metrics, "purgatory_domain_requests_total", domain=OVERFLOW_LABEL) == 4
    assert value(metrics, "purgatory_domain_requests_total", domain="c.example") is None
    assert value(metrics, "purgatory_fetch_errors_total", reason="timeout") == 1
    assert value(metrics, "purgatory_fetch_errors_total", reason=OVERFLOW_LABEL) == 1

    unnamed = SyncMetrics()
    unnamed.fetch_done("", 0.1, 0, None)  # a URL without a host still counts, visibly
    assert value(unnamed, "purgatory_domain_requests_total", domain=UNKNOWN_LABEL) == 1


def test_metrics_endpoint_serves_prometheus_text_and_gzip():
    metrics = SyncMetrics()
    metrics.queue_size(1)
    status, headers, text = scrape(metrics, accept_gzip=True)
    assert status.startswith("200")
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert headers["Content-Encoding"] == "gzip"
    assert "purgatory_sync_queue_size 1.0" in text


def test_s13_1_the_real_actor_system_moves_the_metrics():
    """Split objects over two servers (one fails first): the actors' own calls move the figures."""
    a, b, c = (
        "https://first.example/r.git",
        "https://second.example/r.git",
        "https://broken.example/r.git",
    )
    clock = FakeClock(start=1000.0)
    ctx = MockSyncContext(clock=clock.now).with_urls([c, a, b], identifier="split")
    ctx.with_needed_oids(["c1", "c2", "c3"], identifier="split")
    ctx.url_provides(a, ["c1", "c2"]).url_provides(b, ["c3"])
    ctx.url_fails(c)
    metrics = SyncMetrics()
    harness = Harness(ctx, SyncConfig(), clock, observer=metrics)
    try:
        harness.enqueue("split")  # 0.5 s
        assert value(metrics, "purgatory_sync_queue_size") == 1
        for _ in range(100):
            if not ctx.pending_identifiers():
                break
            harness.advance(0.25)
        assert ctx.pending_identifiers() == []
    finally:
        harness.system.stop()
    assert value(metrics, "purgatory_sync_attempts_total") == 1
    assert value(metrics, "purgatory_sync_oids_fetched_total") == 3
    for domain in ("first.example", "second.example", "broken.example"):
        assert value(metrics, "purgatory_domain_requests_total", domain=domain) == 1, domain
        assert value(metrics, "purgatory_domain_in_flight", domain=domain) == 0, domain
    assert value(metrics, "purgatory_fetch_errors_total", reason="refused") == 1
    assert value(metrics, "purgatory_fetch_seconds_count") == 3
    assert value(metrics, "purgatory_sync_queue_size") == 0
