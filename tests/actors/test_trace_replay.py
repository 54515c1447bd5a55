"""Replay committed message traces (tests/traces/*.jsonl) into fresh actors (S13.3).

For every Scheduler and DomainThrottle lifetime that ended normally, feeding the recorded
inbox at the recorded times into a fresh actor under a FakeClock must produce exactly the
recorded outbound messages. A lifetime that ended in a crash is not replayed: the fresh actor
would finish the message the original died on.
"""

import dataclasses

import pytest

from actors.replay import lifetimes, replay
from actors.tracing import read_trace
from tests.support.trace_scenarios import CONFIGS, TRACES


def _cases():
    for name in sorted(CONFIGS):
        lines = read_trace(TRACES / f"{name}.jsonl")
        actors = sorted(
            {line["to"] for line in lines if line["msg"]["type"] == "ActorStarted"}
            - {"Supervisor", "Releaser"}
        )
        for actor in actors:
            if actor.startswith("FetchActor-"):
                continue
            last = len(lifetimes(lines, actor)) - 1
            yield pytest.param(name, actor, last, id=f"{name}:{actor}:{last}")


@pytest.mark.parametrize(("trace", "actor", "lifetime"), list(_cases()))
def test_replay_reproduces_the_recorded_decisions(trace, actor, lifetime):
    lines = read_trace(TRACES / f"{trace}.jsonl")
    result = replay(lines, actor, CONFIGS[trace], lifetime)
    assert result.delivered > 0
    assert result.expected, "the actor sent nothing in the trace: nothing was checked"
    assert result.matches, (
        f"{actor} diverged from the trace:\nexpected {result.expected}\nactual   {result.actual}"
    )


def test_the_committed_traces_cover_throttling_aggregation_and_a_restart():
    burst = read_trace(TRACES / "burst.jsonl")
    throttles = {l["to"] for l in burst if l["to"].startswith("DomainThrottle[")}
    assert len(throttles) == 3
    assert any(l["msg"]["type"] == "FetchFromDomain" for l in burst), "no throttle-path fetch"
    assert any(l["msg"]["type"] == "WindowFreed" for l in burst), "no rate-window wake-up"
    partial = read_trace(TRACES / "partial_oids.jsonl")
    assert sum(l["msg"]["type"] == "RequestDone" for l in partial) == 2
    crash = read_trace(TRACES / "crash_restart.jsonl")
    assert len(lifetimes(crash, "Scheduler")) == 2
    assert any(l["msg"]["type"] == "ChildFailed" for l in crash)
    assert any(l["msg"]["type"] == "EnqueuePending" for l in crash)


def test_replay_notices_a_changed_policy():
    """The comparison can fail: the burst throttles replayed with other limits diverge."""
    lines = read_trace(TRACES / "burst.jsonl")
    config = dataclasses.replace(CONFIGS["burst"], max_concurrent=5, max_per_minute=30)
    results = [
        replay(lines, actor, config, 0)
        for actor in ("DomainThrottle[alpha.example]", "DomainThrottle[beta.example]")
    ]
    assert not all(r.matches for r in results)


@pytest.mark.parametrize("scenario", sorted(CONFIGS))
def test_a_fresh_recording_replays_too(scenario, tmp_path):
    """Recording now (not just the committed file) yields replayable traces."""
    from tests.support.trace_scenarios import SCENARIOS

    path = tmp_path / f"{scenario}.jsonl"
    SCENARIOS[scenario](path)
    lines = read_trace(path)
    assert replay(lines, "Scheduler", CONFIGS[scenario], len(lifetimes(lines, "Scheduler")) - 1).matches
