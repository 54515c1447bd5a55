"""The recorded message trace of the HTTP-500 scenario (S13.3) and how it is checked.

``test_faults.test_http_500_then_recovery_backs_off_then_releases`` runs relay B with
``--trace``; with ``E2E_RECORD_TRACE=1`` in the environment it copies the trace to
:data:`BACKOFF_TRACE` (``tests/traces/e2e_backoff.jsonl``), which is committed.
:func:`assert_backoff_trace_replays` checks a trace — the fresh one of every run and the
committed one: the Scheduler's and the DomainThrottle's recorded inboxes, fed at the recorded
times into fresh actors under a FakeClock (:func:`actors.replay.replay`), must make them send
exactly what the real relay's actors sent; and the Scheduler's wake-ups must sit one scaled
backoff (S4.1) after each incomplete sync.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.config import SyncConfig
from actors.replay import lifetimes, replay
from actors.tracing import read_trace
from grasp.relay.app import sync_config
from grasp.relay.config import parse_config

BACKOFF_TRACE = Path(__file__).resolve().parents[1] / "traces" / "e2e_backoff.jsonl"
#: Every sync option relay B of the scenario runs with (they override the tier's defaults).
BACKOFF_ARGS = ("--sync-immediate-delay-ms", "100", "--sync-loop-interval-ms", "200",
                "--sync-default-delay-secs", "0.2", "--sync-backoff-scale", "0.01")
#: The only remote's host, hence the DomainThrottle's name (S3.3).
BACKOFF_HOST = "127.0.0.2"
THROTTLE = f"DomainThrottle[{BACKOFF_HOST}]"
SCALED_BACKOFF = (0.2, 0.4, 0.8)  # 20/40/80 s × 0.01


def backoff_config() -> SyncConfig:
    """The SyncConfig relay B ran with, derived from its options exactly as the relay does."""
    return sync_config(parse_config(list(BACKOFF_ARGS), {}))


def assert_backoff_trace_replays(path: Path) -> list[dict[str, Any]]:
    lines = read_trace(path)
    config = backoff_config()
    for actor in ("Scheduler", THROTTLE):
        spans = lifetimes(lines, actor)
        assert len(spans) == 1, f"{actor} restarted or never started: {spans}"
        result = replay(lines, actor, config)
        assert result.delivered > 0 and result.expected, f"nothing of {actor} to check in {path}"
        assert result.matches, (
            f"{actor} diverged from {path}:\nexpected {result.expected}\nactual   {result.actual}")
    _assert_scaled_backoff(lines)
    return lines


def _assert_scaled_backoff(lines: list[dict[str, Any]]) -> None:
    """Three incomplete syncs, each followed by the next attempt one scaled backoff later."""
    to_scheduler = [line for line in lines if line["to"] == "Scheduler"]
    finished = [line for line in to_scheduler if line["msg"]["type"] == "SyncFinished"]
    assert [line["msg"]["complete"] for line in finished] == [False, False, False, True], finished
    started = [line for line in lines if line["from"] == "Scheduler" and line["msg"]["type"] == "SyncIdentifier"]
    assert len(started) == 4, started
    for fail, retry, backoff in zip(finished, started[1:], SCALED_BACKOFF, strict=False):
        waited = retry["t"] - fail["t"]
        # a precise wake-up (S4.4); the slack only absorbs a busy test machine
        assert backoff <= waited < backoff + 0.15, f"retry {waited:.3f} s after a failure, backoff {backoff} s"
