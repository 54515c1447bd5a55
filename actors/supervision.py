"""Restart policy: which children restart, doubling backoff per child, and poison detection per
message (pure)."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from messages import to_json

from .names import RELEASER, SCHEDULER, parse_throttle_name, recipient_key

__all__ = ["RestartDecision", "RestartPolicy", "rebuilds_queues", "restartable"]


def restartable(child: str) -> bool:
    """The long-lived children are restarted; FetchActors are not: their work reports its own
    end and the sync queue retries it."""
    return child in (SCHEDULER, RELEASER) or parse_throttle_name(child) is not None


def rebuilds_queues(child: str) -> bool:
    """A restarted Scheduler or DomainThrottle starts empty: every identifier with held events
    must be queued again from the purgatory store, the source of truth."""
    return child == SCHEDULER or parse_throttle_name(child) is not None


@dataclass(frozen=True, slots=True)
class RestartDecision:
    delay: float
    redeliver: bool  # False when the message is poison (it killed an actor twice)


class RestartPolicy:
    """A child that keeps failing waits longer (``min`` doubling to ``max``; the streak resets
    after ``quiet`` seconds without failure). A message that killed a child twice is poison:
    it is dropped instead of redelivered, so one bad message cannot crash-loop an actor."""

    def __init__(self, minimum: float, maximum: float, quiet: float = 60.0, memory: int = 1024):
        self.minimum, self.maximum, self.quiet, self.memory = minimum, maximum, quiet, memory
        self._streaks: dict[str, tuple[int, float]] = {}
        self._kills: OrderedDict[str, int] = OrderedDict()

    def on_failure(self, child: str, message: Any, now: float) -> RestartDecision:
        count, last = self._streaks.get(child, (0, float("-inf")))
        count = 1 if now - last > self.quiet else count + 1
        self._streaks[child] = (count, now)
        delay = min(self.minimum * 2 ** (count - 1), self.maximum)
        if message is None:
            return RestartDecision(delay, redeliver=False)
        key = f"{recipient_key(child)}:{json.dumps(to_json(message), sort_keys=True)}"
        kills = self._kills.pop(key, 0) + 1
        self._kills[key] = kills
        while len(self._kills) > self.memory:
            self._kills.popitem(last=False)
        return RestartDecision(delay, redeliver=kills < 2)
