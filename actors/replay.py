"""Replay a recorded message trace against a fresh actor under a FakeClock (S13.3).

The Scheduler and a DomainThrottle decide from their inbox and the clock alone, so feeding an
actor the messages it received — including the timer messages, at the recorded times — must
make it send exactly what it sent then. :func:`replay` does that with every effect captured
instead of performed (timers are armed on a clock that is only ever *set*, never advanced,
so they never fire by themselves), and returns what the actor sent per recipient, in order,
next to what the trace says it sent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from messages import from_json, to_json

from .base import BaseActor, Envelope, Runtime
from .clock import FakeClock
from .config import SyncConfig
from .domain import DomainThrottle
from .scheduler import Scheduler

__all__ = ["ReplayResult", "lifetimes", "recipient_key", "replay"]


def recipient_key(name: str) -> str:
    """FetchActor names are process-global counters; compare them as one class of recipient."""
    return "FetchActor-*" if name.startswith("FetchActor-") else name


@dataclass
class ReplayResult:
    actor: str
    delivered: int = 0
    expected: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    actual: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return _normalise(self.expected) == _normalise(self.actual)


def _normalise(sent: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    # Messages to FetchActors go to distinct, freshly started actors: their order among
    # themselves is the spawn order, which the trace records at delivery, so compare as a bag.
    return {
        key: sorted(map(repr, msgs)) if key == "FetchActor-*" else msgs
        for key, msgs in sent.items()
    }


class _RecordingTracer:
    enabled = True

    def __init__(self, actor: str, sink: dict[str, list[dict[str, Any]]]) -> None:
        self.actor, self.sink = actor, sink

    def record(self, t: float, sender: str, receiver: str, msg: Any) -> None:
        if sender == self.actor:  # replies to asks
            self.sink[recipient_key(receiver)].append(to_json(msg))

    def close(self) -> None:
        pass


def lifetimes(lines: Iterable[dict[str, Any]], actor: str) -> list[tuple[int, float]]:
    """The ``(seq, seq_end)`` spans of each incarnation of ``actor`` (restarts split them)."""
    starts = [
        line["seq"]
        for line in sorted(lines, key=lambda line: line["seq"])
        if line["to"] == actor and line["msg"]["type"] == "ActorStarted"
    ]
    return list(zip(starts, [*starts[1:], float("inf")], strict=True))


def replay(
    lines: Iterable[dict[str, Any]], actor: str, config: SyncConfig, lifetime: int = 0
) -> ReplayResult:
    """Feed one lifetime of ``actor``'s recorded inbox into a fresh instance and collect what
    it sends, next to what the trace says that lifetime sent."""
    lines = sorted(lines, key=lambda line: line["seq"])
    spans = lifetimes(lines, actor)
    if lifetime >= len(spans):
        raise ValueError(f"the trace has no lifetime {lifetime} of {actor}")
    first, end = spans[lifetime]
    window = [line for line in lines if first <= line["seq"] < end]
    result = ReplayResult(actor)
    expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    actual: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in window:
        if line["from"] == actor and line["to"] != actor:
            expected[recipient_key(line["to"])].append(line["msg"])
    inbound = [line for line in window if line["to"] == actor]
    clock = FakeClock(start=inbound[0]["t"])
    instance = _fresh(actor, config, clock, actual)
    instance.on_start()
    for line in inbound[1:]:
        clock.set(line["t"])
        msg = from_json(line["msg"])
        reply = line["from"] != "timer" and _is_ask(window, line)
        instance.on_receive(Envelope(line["from"], msg, ask=reply))
        result.delivered += 1
    instance.cancel_timers()
    result.expected, result.actual = dict(expected), dict(actual)
    return result


def _is_ask(lines: list[dict[str, Any]], line: dict[str, Any]) -> bool:
    """An inbound message was an ask when the actor's next line back to that sender is a Reply."""
    for later in lines:
        if later["seq"] > line["seq"] and later["from"] == line["to"] and later["to"] == line["from"]:
            return later["msg"]["type"] == "Reply" and later["msg"]["request"] == line["msg"]["type"]
    return False


def _fresh(actor: str, config: SyncConfig, clock: FakeClock, sink) -> BaseActor:
    """An actor instance that is never started as a pykka actor: messages are handed to
    ``on_receive`` directly, and every effect lands in ``sink``."""
    runtime = Runtime(ctx=None, config=config, clock=clock)  # type: ignore[arg-type]
    runtime.tracer = _RecordingTracer(actor, sink)

    def capture(sender: str, target: Any, msg: Any) -> bool:
        name = target if isinstance(target, str) else "FetchActor-?"
        sink[recipient_key(name)].append(to_json(msg))
        return True

    runtime.tell = capture  # type: ignore[method-assign]
    runtime.spawn_fetch = lambda sender, msg: capture(sender, "FetchActor-*", msg)
    if actor == "Scheduler":
        return Scheduler(runtime)
    if actor.startswith("DomainThrottle[") and actor.endswith("]"):
        return DomainThrottle(runtime, actor[len("DomainThrottle[") : -1])
    raise ValueError(f"only the Scheduler and DomainThrottles are replayable, not {actor}")
