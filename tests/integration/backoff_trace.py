"""The recorded message trace of the HTTP-500 scenario (S13.3) and how it is checked.

``test_faults.test_http_500_then_recovery_backs_off_then_releases`` runs relay B with
``--trace``; with ``E2E_RECORD_TRACE=1`` in the environment it copies the trace to
:data:`BACKOFF_TRACE` (``tests/traces/e2e_backoff.jsonl``), which is committed.
:func:`assert_backoff_trace_replays` checks a trace — the fresh one of every run and the
committed one: every actor's recorded inputs — the Scheduler's, the DomainThrottle's, each
FetchActor's, the Releaser's and the Supervisor's — fed at the recorded times into fresh actors
under a FakeClock (:func:`actors.trace.replay.replay_all`), must make them send exactly what the
real relay's actors sent; and the Scheduler's wake-ups must sit one scaled backoff (S4.1) after
each incomplete sync.
"""

from __future__ import annotations

from pathlib import Path

from actors.config import SyncConfig
from actors.names import RELEASER, SCHEDULER, SUPERVISOR, is_fetch_name, throttle_name
from actors.trace.format import TraceLine, load_trace
from actors.trace.replay import lifetimes, replay_all
from grasp.relay.app import sync_config
from grasp.relay.config import parse_config

BACKOFF_TRACE = Path(__file__).resolve().parents[1] / "traces" / "e2e_backoff.jsonl"
#: Every sync option relay B of the scenario runs with (they override the tier's defaults).
BACKOFF_ARGS = (
    "--sync-immediate-delay-ms",
    "100",
    "--sync-loop-interval-ms",
    "200",
    "--sync-default-delay-secs",
    "0.2",
    "--sync-backoff-scale",
    "0.01",
)
#: The only remote's host, hence the DomainThrottle's name (S3.3).
BACKOFF_HOST = "127.0.0.2"
THROTTLE = throttle_name(BACKOFF_HOST)
SCALED_BACKOFF = (0.2, 0.4, 0.8)  # 20/40/80 s × 0.01


def backoff_config() -> SyncConfig:
    """The SyncConfig relay B ran with, derived from its options exactly as the relay does."""
    return sync_config(parse_config(list(BACKOFF_ARGS), {}))


def assert_backoff_trace_replays(path: Path) -> list[TraceLine]:
    lines = load_trace(path)
    for actor in (SCHEDULER, THROTTLE):
        spans = lifetimes(lines, actor)
        assert len(spans) == 1, f"{actor} restarted or never started: {spans}"
    results = replay_all(lines, backoff_config())
    replayed = {r.actor for r in results}
    assert {SCHEDULER, THROTTLE, RELEASER, SUPERVISOR} <= replayed, replayed
    assert sum(map(is_fetch_name, replayed)) == 4, replayed  # one FetchActor per attempt
    for result in results:
        assert result.expected, f"nothing of {result.actor} to check in {path}"
        assert result.matches, (
            f"{result.actor} diverged from {path} ({result.divergence}):\n"
            f"expected {result.expected}\nactual   {result.actual}"
        )
    _assert_scaled_backoff(lines)
    return lines


def _assert_scaled_backoff(lines: list[TraceLine]) -> None:
    """Three incomplete syncs, each followed by the next attempt one scaled backoff later."""
    to_scheduler = [line for line in lines if line.receiver == "Scheduler"]
    finished = [line for line in to_scheduler if line.type == "SyncFinished"]
    assert [line.msg["complete"] for line in finished] == [False, False, False, True], finished
    started = [
        line for line in lines if line.sender == "Scheduler" and line.type == "SyncIdentifier"
    ]
    assert len(started) == 4, started
    for fail, retry, backoff in zip(finished, started[1:], SCALED_BACKOFF, strict=False):
        waited = retry.t - fail.t
        # a precise wake-up (S4.4); the slack only absorbs a busy test machine
        assert backoff <= waited < backoff + 0.15, (
            f"retry {waited:.3f} s after a failure, backoff {backoff} s"
        )
