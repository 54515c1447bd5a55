"""Restart policy: doubling backoff per child, and poison detection per message (pure)."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from messages import to_json

__all__ = ["RestartDecision", "RestartPolicy"]


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
        key = f"{_kind(child)}:{json.dumps(to_json(message), sort_keys=True)}"
        kills = self._kills.pop(key, 0) + 1
        self._kills[key] = kills
        while len(self._kills) > self.memory:
            self._kills.popitem(last=False)
        return RestartDecision(delay, redeliver=kills < 2)


def _kind(child: str) -> str:
    return child.split("-")[0]
