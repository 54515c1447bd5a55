"""What a sync source reports (the status API
and page show it) and its reconnect backoff (S10.7)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

__all__ = ["Backoff", "Counters", "SourceState", "SyncSourceStatus"]


class SourceState(str, Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKING_OFF = "backing off"
    STOPPED = "stopped"


@dataclass(frozen=True)
class SyncSourceStatus:
    """One source as the status API and page show it. Times are wall-clock unix seconds."""

    url: str
    state: str
    connected_since: float | None
    last_event_at: float | None
    #: Valid events of the requested kinds handed to the write policy (the overlap of two
    #: history pages is fed once; a re-delivery after a reconnect counts again).
    events_received: int
    #: Events the policy accepted as new (stored or held in purgatory).
    events_accepted: int
    #: Events the policy already had (``duplicate:``).
    events_duplicate: int
    #: Events the policy refused (``invalid:``, ``blocked:``, ``error:``, ...).
    events_rejected: int
    #: Frames and events dropped before the policy: not JSON, bad id/signature, wrong kind, too big.
    events_invalid: int
    #: Connection attempts after the first one.
    reconnects: int
    last_error: str | None
    #: When the next connection attempt is due, while backing off.
    next_attempt_at: float | None
    #: The current connection finished its history walk and is live.
    caught_up: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Backoff:
    """Reconnect delays: ``initial`` doubling up to ``maximum`` (S10.7: 5 s .. 5 min)."""

    def __init__(self, initial: float, maximum: float) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial


@dataclass
class Counters:
    """What happened to the events of one source (see :class:`SyncSourceStatus`)."""

    received: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    invalid: int = 0
