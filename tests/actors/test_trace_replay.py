"""Replay committed message traces (tests/traces/*.jsonl) into fresh actors (S13.3).

For every lifetime of every actor — Scheduler, DomainThrottles, FetchActors, the Releaser and
the Supervisor — that ended normally, feeding the recorded inputs (inbox at the recorded times,
answers to asks, port answers) into a fresh actor under a FakeClock must produce exactly the
recorded outbound messages. A lifetime that ended in a crash is not replayed: the fresh actor
would finish the message the original died on.
"""

import dataclasses
from collections import Counter

import pytest

from actors.names import RELEASER, SCHEDULER, SUPERVISOR, is_fetch_name, parse_throttle_name
from actors.trace.format import load_trace
from actors.trace.replay import lifetimes, replay, replay_all, replayable
from tests.support.trace_scenarios import CONFIGS, TRACES


def _kind(actor):
    if is_fetch_name(actor):
        return "FetchActor"
    return "DomainThrottle" if parse_throttle_name(actor) else actor


@pytest.mark.parametrize("trace", sorted(CONFIGS))
def test_replay_reproduces_every_actors_recorded_decisions(trace):
    lines = load_trace(TRACES / f"{trace}.jsonl")
    results = replay_all(lines, CONFIGS[trace])
    kinds = Counter(_kind(r.actor) for r in results)
    assert {SCHEDULER, RELEASER, SUPERVISOR, "DomainThrottle", "FetchActor"} <= set(kinds), kinds
    for result in results:
        assert result.matches, (
            f"{result.actor} diverged from the trace ({result.divergence}):\n"
            f"expected {result.expected}\nactual   {result.actual}"
        )
    silent = [r.actor for r in results if not r.expected]
    assert silent == [], f"nothing was checked for {silent}"


def test_replay_notices_a_changed_world():
    """The port answers are inputs too: a FetchActor told that its fetch brought nothing does
    not ask the Releaser to release, and the comparison says so."""
    lines = load_trace(TRACES / "partial_oids.jsonl")
    first = next(
        line
        for line in lines
        if line.type == "PortAnswer" and line.msg["method"] == "fetch_oids" and line.msg["value"]
    )
    changed = [
        dataclasses.replace(line, msg={**line.msg, "value": []}) if line is first else line
        for line in lines
    ]
    number = [a for a, _ in replayable(lines) if a == first.sender]
    assert number == [first.sender]
    assert replay(lines, first.sender, CONFIGS["partial_oids"]).matches
    assert not replay(changed, first.sender, CONFIGS["partial_oids"]).matches


def test_the_committed_traces_cover_throttling_aggregation_and_a_restart():
    burst = load_trace(TRACES / "burst.jsonl")
    throttles = {line.receiver for line in burst if line.receiver.startswith("DomainThrottle[")}
    assert len(throttles) == 3
    assert any(line.type == "FetchFromDomain" for line in burst), "no throttle-path fetch"
    assert any(line.type == "WindowFreed" for line in burst), "no rate-window wake-up"
    partial = load_trace(TRACES / "partial_oids.jsonl")
    # Two requests, both with a transfer: the one that brought everything ends with its
    # TransferEnded alone, the partial one also says why in a RequestDone (S18.2; P4's fold).
    assert sum(line.type == "TransferEnded" for line in partial) == 2
    assert [line.msg["reason"] for line in partial if line.type == "RequestDone"] == [
        "missing_objects"
    ]
    crash = load_trace(TRACES / "crash_restart.jsonl")
    assert len(lifetimes(crash, "Scheduler")) == 2
    assert any(line.type == "ChildFailed" for line in crash)
    assert any(line.type == "EnqueuePending" for line in crash)


def test_replay_notices_a_changed_policy():
    """The comparison can fail: the burst throttles replayed with other limits diverge."""
    lines = load_trace(TRACES / "burst.jsonl")
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
    lines = load_trace(path)
    assert replay(
        lines, "Scheduler", CONFIGS[scenario], len(lifetimes(lines, "Scheduler")) - 1
    ).matches
