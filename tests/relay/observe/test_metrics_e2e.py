"""``/metrics`` scraped during a real sync (S13.1): a ``grasp-relay`` process, a real ``git
http-backend`` server on another loopback host, and a state event the relay must fetch for.

The server holds the fetch's upload-pack requests until the test lets them go, so the test can
scrape while the request is in flight, then again once the event is released, and check that
each S13.1 series moved exactly as the sync did.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import gevent.event
import pytest
from prometheus_client.parser import text_string_to_metric_families

from grasp.nostr.event import npub_encode
from tests.support.gitrepo import RepoBuilder
from tests.support.gitserver import GitServer
from tests.support.nip34 import Key
from tests.support.relay import RelayClient, RelayProcess
from tests.support.wait import wait_for

D = "metered"
HOST = "127.0.0.2"
GATE_LIMIT_SECS = 30.0


def hold_upload_pack(release: gevent.event.Event) -> Callable[[Any], Any]:
    """GitServer wrap: every ``POST .../git-upload-pack`` waits for ``release`` (bounded), then
    is served normally; the ref advertisement (GET) passes at once."""

    def wrap(app: Any) -> Any:
        def gated(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").endswith(
                "/git-upload-pack"
            ):
                release.wait(GATE_LIMIT_SECS)
            return app(environ, start_response)

        return gated

    return wrap


def scrape(relay: RelayProcess) -> dict[str, float]:
    """Every sample as ``name{k="v",...}`` (labels sorted) -> value."""
    with urllib.request.urlopen(relay.http_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def value(samples: dict[str, float], name: str, **labels: str) -> float:
    """A sample's value; 0 when the series does not exist yet (a labelled counter before use)."""
    key = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return samples.get(f"{name}{{{key}}}" if key else name, 0.0)


def scrape_when(
    relay: RelayProcess, ready: Callable[[dict[str, float]], bool], what: str
) -> dict[str, float]:
    """Scrape until ``ready(samples)`` holds (deadline 10 s); the samples that satisfied it."""
    seen: dict[str, float] = {}

    def attempt() -> bool:
        seen.clear()
        seen.update(scrape(relay))
        return ready(seen)

    wait_for(attempt, timeout=10, message=what)
    return dict(seen)


@pytest.fixture
def gate():
    release = gevent.event.Event()
    yield release
    release.set()  # never leave a server greenlet waiting


@pytest.fixture
def remote(tmp_path, gate):
    with GitServer(tmp_path / "remote", host=HOST, wrap=hold_upload_pack(gate)) as server:
        yield server


@pytest.mark.slow
def test_s13_1_metrics_follow_one_sync_from_held_to_released(relay_factory, remote, gate):
    """Held: queue 1, purgatory_events 1. Fetching: one attempt, the domain's request in flight,
    nothing fetched or released yet. Released: the request counted for the domain, both needed
    OIDs (S2.1: a branch tip and an annotated tag object) fetched, one 30618 released, the
    purgatory and the queue back to 0."""
    source = RepoBuilder.create(remote.root / f"{D}.git")
    first, tip = source.chain(2, branch="main")
    tag = source.tag("v1", first)
    relay = relay_factory("--allow-private-fetch", "--sync-default-delay-secs", "0.2")
    authority = f"127.0.0.1:{relay.port}"
    owner = Key()
    own_url = f"http://{authority}/{npub_encode(owner.pubkey)}/{D}.git"
    client = RelayClient(relay.ws_url)
    try:
        before = scrape(relay)
        assert value(before, "purgatory_sync_attempts_total") == 0
        assert value(before, "purgatory_sync_queue_size") == 0

        ok = client.publish(
            owner.announcement(
                D, clone=[own_url, remote.url(f"{D}.git")], relays=[f"ws://{authority}"]
            )
        )
        assert ok[2] is True, ok
        state = owner.state(D, {"refs/heads/main": tip, "refs/tags/v1": tag})
        client.send("REQ", "live", {"ids": [state.id]})
        client.expect("EOSE")
        ok = client.publish(state)
        assert ok[2] is True and ok[3].startswith("purgatory:"), ok

        held = scrape_when(
            relay,
            lambda s: value(s, "purgatory_sync_queue_size") == 1,
            "the Scheduler to queue the identifier",
        )  # a tell: not before the OK
        assert value(held, "purgatory_events", kind="30618") == 1

        fetching = scrape_when(
            relay,
            lambda s: value(s, "purgatory_domain_in_flight", domain=HOST) == 1,
            "the relay's request to be in flight at the gated server",
        )
        assert value(fetching, "purgatory_sync_attempts_total") == 1
        assert (
            value(fetching, "purgatory_domain_requests_total", domain=HOST) == 0
        )  # counted when it ends
        assert value(fetching, "purgatory_sync_oids_fetched_total") == 0
        assert value(fetching, "purgatory_released_total", kind="30618") == 0
        assert value(fetching, "purgatory_events", kind="30618") == 1

        gate.set()
        frame = client.recv()
        assert frame[0] == "EVENT" and frame[2]["id"] == state.id, frame
        after = scrape_when(
            relay, lambda s: value(s, "purgatory_sync_queue_size") == 0, "the sync queue to drain"
        )
    finally:
        client.close()
    assert value(after, "purgatory_sync_attempts_total") == 1
    assert value(after, "purgatory_domain_in_flight", domain=HOST) == 0
    assert value(after, "purgatory_domain_requests_total", domain=HOST) == 1
    assert value(after, "purgatory_sync_oids_fetched_total") == 2
    assert value(after, "purgatory_fetch_seconds_count") == 1
    assert value(after, "purgatory_released_total", kind="30618") == 1
    assert value(after, "purgatory_events", kind="30618") == 0
    assert not any(name.startswith("purgatory_fetch_errors_total{") for name in after)
    # the server agrees: one fetch session (one ref advertisement) for the whole identifier
    assert remote.count(method="GET") == 1
