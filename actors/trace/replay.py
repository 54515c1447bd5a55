"""Replay a recorded message trace against a fresh actor under a FakeClock (S13.3).

A trace holds every input an actor had: the messages it took from its inbox (timer deliveries
included, at their recorded times), the answers to its asks (``Reply`` lines addressed to it)
and what the port returned to it (``PortAnswer`` lines). Feeding one lifetime of an actor those
inputs — messages through ``on_receive``, answers through a :class:`RecordingEffects` and a
:class:`ReplayPort` — must make it send exactly what it sent then, for every actor: the
Scheduler and DomainThrottles (which decide from their inbox and the clock), FetchActors and the
Releaser (which also depend on the world) and the Supervisor. :func:`replay` returns what the
fresh actor sent per recipient next to what the trace says it sent.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pykka

from messages import from_json, to_json
from messages.port import FetchResult, LedgerAnswer, PortAnswer, RepositoryData
from messages.releaser import ProcessResult

from ..base import BaseActor
from ..clock import FakeClock
from ..config import SyncConfig
from ..context import FetchFailed, TransferEnd
from ..domain import DomainThrottle
from ..effects import Envelope
from ..fetch import FetchActor
from ..names import (
    FETCH_ANY,
    PORT,
    RELEASER,
    SCHEDULER,
    SUPERVISOR,
    TIMER,
    is_fetch_name,
    parse_throttle_name,
    recipient_key,
)
from ..observer import SyncObserver
from ..port import TRANSFER_ENDED
from ..releaser import Releaser
from ..scheduler import Scheduler
from ..services import Services
from ..supervisor import Supervisor
from .format import TraceLine

__all__ = [
    "RecordingEffects",
    "ReplayPort",
    "ReplayResult",
    "lifetimes",
    "replay",
    "replay_all",
    "replayable",
]

T = TypeVar("T")
Sent = dict[str, list[dict[str, Any]]]


class ReplayDiverged(Exception):
    """The fresh actor asked the port something the trace does not answer."""


class ReplayedBug(Exception):
    """The recorded port call raised an unexpected exception; replay raises it again."""


@dataclass
class ReplayResult:
    actor: str
    delivered: int = 0
    expected: Sent = field(default_factory=dict)
    actual: Sent = field(default_factory=dict)
    divergence: str | None = None

    @property
    def matches(self) -> bool:
        return self.divergence is None and _normalise(self.expected) == _normalise(self.actual)


def _normalise(sent: Sent) -> dict[str, Any]:
    # Messages to FetchActors go to distinct, freshly started actors: their order among
    # themselves is the spawn order, which the trace records at delivery, so compare as a bag.
    return {
        key: sorted(map(repr, msgs)) if key == FETCH_ANY else msgs for key, msgs in sent.items()
    }


def lifetimes(lines: Iterable[TraceLine], actor: str) -> list[tuple[int, float]]:
    """The ``(seq, seq_end)`` spans of each incarnation of ``actor`` (restarts split them)."""
    starts = [
        line.seq
        for line in sorted(lines, key=lambda line: line.seq)
        if line.receiver == actor and line.type == "ActorStarted"
    ]
    return list(zip(starts, [*starts[1:], float("inf")], strict=True))


def replayable(lines: Iterable[TraceLine]) -> list[tuple[str, int]]:
    """Every ``(actor, lifetime)`` of the trace that ended normally.

    A lifetime that ended in a crash (the actor's ``ChildFailed`` to the Supervisor closes it)
    is left out: the fresh actor would finish the message the original died on.
    """
    ordered = sorted(lines, key=lambda line: line.seq)
    actors = dict.fromkeys(line.receiver for line in ordered if line.type == "ActorStarted")
    crashes = [
        (line.seq, line.msg.get("child"))
        for line in ordered
        if line.receiver == SUPERVISOR and line.type == "ChildFailed"
    ]
    cases = []
    for actor in actors:
        for number, (first, end) in enumerate(lifetimes(ordered, actor)):
            if not any(child == actor and first <= seq < end for seq, child in crashes):
                cases.append((actor, number))
    return cases


def replay_all(lines: Iterable[TraceLine], config: SyncConfig) -> list[ReplayResult]:
    """:func:`replay` of every :func:`replayable` lifetime of the trace."""
    ordered = sorted(lines, key=lambda line: line.seq)
    return [replay(ordered, actor, config, number) for actor, number in replayable(ordered)]


def replay(
    lines: Iterable[TraceLine], actor: str, config: SyncConfig, lifetime: int = 0
) -> ReplayResult:
    """Feed one lifetime of ``actor``'s recorded inputs into a fresh instance and collect what
    it sends, next to what the trace says that lifetime sent."""
    ordered = sorted(lines, key=lambda line: line.seq)
    spans = lifetimes(ordered, actor)
    if lifetime >= len(spans):
        raise ValueError(f"the trace has no lifetime {lifetime} of {actor}")
    first, end = spans[lifetime]
    window = [line for line in ordered if first <= line.seq < end]
    result = ReplayResult(actor)
    expected: Sent = defaultdict(list)
    for line in window:
        if line.sender == actor and line.receiver not in (actor, PORT):
            expected[recipient_key(line.receiver)].append(_canonical(line.msg))
    inbound = [line for line in window if line.receiver == actor and line.type != "Reply"]
    replies: dict[str, deque[TraceLine]] = defaultdict(deque)
    for line in window:
        if line.receiver == actor and line.type == "Reply":
            replies[recipient_key(line.sender)].append(line)
    answers = deque(line for line in window if line.sender == actor and line.receiver == PORT)
    actual: Sent = defaultdict(list)
    clock = FakeClock(start=inbound[0].t)
    port = ReplayPort(answers)
    services = Services(port, config, clock, _RecordingTracer(actor, actual), SyncObserver())
    effects = RecordingEffects(actor, actual, replies)
    instance = _fresh(actor, services, lambda name, ref: effects)
    instance.on_start()
    for line in inbound[1:]:
        clock.set(line.t)
        ask = line.sender != TIMER and _is_ask(window, line)
        instance.on_receive(Envelope(line.sender, from_json(line.msg), ask=ask))
        result.delivered += 1
    result.expected, result.actual = dict(expected), dict(actual)
    result.divergence = port.divergence or (
        f"{len(answers)} port answers left unused" if answers else None
    )
    return result


def _canonical(msg: dict[str, Any]) -> dict[str, Any]:
    """A recorded message as the codec writes it today: a field added later with a default
    (``EnqueueSync.if_absent``, S19.2) is spelt out, so older traces compare equal."""
    return to_json(from_json(msg))


def _is_ask(lines: Sequence[TraceLine], line: TraceLine) -> bool:
    """An inbound message was an ask when the actor's next line back to that sender is a Reply
    written before the actor took its next message (it answers a message before it takes the
    next one). So a tell followed by an ask of the same type from the same sender — a
    FetchActor's first ``ProcessSatisfiable`` is told, the later ones asked — is a tell."""
    actor = line.receiver
    for later in lines:
        if later.seq <= line.seq:
            continue
        if later.receiver == actor and later.type != "Reply" and later.sender != actor:
            return False  # the actor took its next message: ``line`` got no answer
        if later.sender == actor and later.receiver == line.sender:
            return later.type == "Reply" and later.msg["request"] == line.type
    return False


def _fresh(actor: str, services: Services, bind: Any) -> BaseActor:
    """An actor instance that is never started as a pykka actor: messages are handed to
    ``on_receive`` directly, and every effect lands in the recording effects."""
    fixed: dict[str, Callable[[], BaseActor]] = {
        SCHEDULER: lambda: Scheduler(services, bind),
        RELEASER: lambda: Releaser(services, bind),
        SUPERVISOR: lambda: Supervisor(services, bind),
    }
    if actor in fixed:
        return fixed[actor]()
    domain = parse_throttle_name(actor)
    if domain is not None:
        return DomainThrottle(services, bind, domain)
    if is_fetch_name(actor):
        return FetchActor(services, bind, actor)
    raise ValueError(f"{actor} is not an actor of this system")


class _RecordingTracer:
    """Collects the fresh actor's answers to asks (``Reply`` lines it writes)."""

    enabled = True

    def __init__(self, actor: str, sink: Sent) -> None:
        self.actor, self.sink = actor, sink

    def record(self, t: float, sender: str, receiver: str, msg: Any) -> None:
        if sender == self.actor and receiver != PORT:
            self.sink[recipient_key(receiver)].append(to_json(msg))

    def close(self) -> None:
        pass


class RecordingEffects:
    """:class:`~actors.effects.Effects` that record sends and answer asks from the trace.

    An ask counts as sent only when the trace holds its answer: an ask the live system could not
    deliver (an absent or dead actor) left no line, and raises ``ActorDeadError`` here as there.
    """

    def __init__(self, name: str, sink: Sent, replies: dict[str, deque[TraceLine]]) -> None:
        self.name, self._sink, self._replies = name, sink, replies

    def tell(self, target: str, msg: Any) -> bool:
        self._sink[recipient_key(target)].append(to_json(msg))
        return True

    def ask(
        self, target: str, msg: Any, *, start: bool = True, timeout: float | None = None
    ) -> Any:
        queue = self._replies.get(recipient_key(target))
        if not queue or queue[0].msg.get("request") != type(msg).__name__:
            raise pykka.ActorDeadError(f"{target}: the trace holds no answer to {msg!r}")
        self._sink[recipient_key(target)].append(to_json(msg))
        return from_json(queue.popleft().msg).value

    def spawn_fetch(self, msg: Any) -> None:
        self._sink[FETCH_ANY].append(to_json(msg))

    def arm(self, key: str, due: float, msg: Any) -> None:
        pass  # recorded timer deliveries are fed as inbound messages

    def disarm(self, key: str) -> None:
        pass

    def timer_delivered(self, msg: Any) -> None:
        pass

    def cancel_timers(self) -> None:
        pass

    def run(self, work: Callable[..., T], *args: Any) -> T:
        return work(*args)

    def restart(self, child: str) -> bool:
        return True

    def stop(self) -> None:
        pass

    def detach(self) -> None:
        pass


class ReplayPort:
    """A :class:`~actors.context.SyncContext` that answers with the recorded ``PortAnswer``s,
    in order, raising again what was raised; a call the trace did not record is a divergence."""

    def __init__(self, answers: deque[TraceLine]) -> None:
        self._answers = answers
        self.divergence: str | None = None
        self._recorded = {line.msg.get("method") for line in answers}

    def _next_or(self, method: str, default: Any) -> Any:
        """A cluster call (S19.2) a trace recorded before leases and the ledger existed never
        answered: there the single process's answer (granted) is what the actor had."""
        if method not in self._recorded:
            return default
        return self._next(method)

    def _next(self, method: str) -> Any:
        if not self._answers:
            return self._diverge(f"port.{method} called; the trace has no more answers")
        answer = from_json(self._answers.popleft().msg)
        assert isinstance(answer, PortAnswer)
        if answer.method != method:
            return self._diverge(f"port.{method} called; the trace answered {answer.method}")
        if answer.failure is not None:
            raise FetchFailed(
                answer.url or "",
                answer.failure,
                answer.detail or "",
                started=answer.started,
                seconds=answer.seconds,
            )
        if answer.error is not None:
            raise ReplayedBug(answer.error)
        return answer.value

    def _diverge(self, text: str) -> Any:
        self.divergence = self.divergence or text
        raise ReplayDiverged(text)

    def fetch_repository_data(self, identifier: str) -> RepositoryData:
        data: RepositoryData = self._next("fetch_repository_data")
        return data

    def collect_needed_oids(self, identifier: str) -> set[str]:
        return set(self._next("collect_needed_oids"))

    def fetch_oids(
        self,
        repo_path: Path,
        url: str,
        oids: Sequence[str],
        on_transfer_end: TransferEnd | None = None,
    ) -> FetchResult:
        if self._answers and self._answers[0].msg.get("method") == TRANSFER_ENDED:
            self._answers.popleft()  # the transfer ended here live: the slot was freed here
            if on_transfer_end is not None:
                on_transfer_end()
        value = self._next("fetch_oids")
        if isinstance(value, FetchResult):
            return value
        return FetchResult(tuple(value))  # recorded before fetches answered a FetchResult

    def process_satisfiable_events(self, identifier: str) -> ProcessResult:
        result: ProcessResult = self._next("process_satisfiable_events")
        return result

    def has_pending_events(self, identifier: str) -> bool:
        return bool(self._next("has_pending_events"))

    def find_target_repo(self, data: RepositoryData) -> Path | None:
        value = self._next("find_target_repo")
        return None if value is None else Path(value)

    def our_domain(self) -> str | None:
        value: str | None = self._next("our_domain")
        return value

    def pending_identifiers(self) -> list[str]:
        return list(self._next("pending_identifiers"))

    def take_lease(self, identifier: str) -> bool:
        return bool(self._next_or("take_lease", True))

    def release_lease(self, identifier: str) -> None:
        self._next_or("release_lease", None)

    def ledger_start(
        self, domain: str, max_concurrent: int, max_per_window: int, window: float
    ) -> LedgerAnswer:
        answer: LedgerAnswer = self._next_or("ledger_start", LedgerAnswer(True))
        return answer

    def ledger_done(self, domain: str, contacted: bool) -> None:
        self._next_or("ledger_done", None)
