"""Peer health (S17.4) as pure policy: every method takes ``now`` (wall-clock seconds).

Three answers to a peer that fails, each for a different failure:

* **Backoff** for what may pass by itself (refused, lost, a timeout): 5 s doubling per failure
  in a row, capped at 1 h; reset once a connection has caught up with the history.
* **Cool-down** when the peer says ``rate-limited:`` (in ``CLOSED``, ``NOTICE`` or ``OK``): it
  asked us to wait, so the next attempt is at least :data:`COOL_DOWN_SECS` later (ngit-grasp
  uses 65 s) whatever the backoff says; it is not a fault of the peer.
* **The naughty list** for what will not pass by itself soon — the name does not resolve, TLS
  fails, the peer does not speak the protocol (garbage frames, a refused handshake): the peer
  is left alone for :data:`NAUGHTY_SECS` (12 h). The list is bounded
  (:data:`MAX_NAUGHTY`, the entry closest to expiry goes first) and entries expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "BACKOFF_INITIAL_SECS",
    "BACKOFF_MAX_SECS",
    "COOL_DOWN_SECS",
    "MAX_NAUGHTY",
    "NAUGHTY_SECS",
    "Failure",
    "NaughtyList",
    "PeerHealth",
]

BACKOFF_INITIAL_SECS = 5.0
BACKOFF_MAX_SECS = 3600.0
COOL_DOWN_SECS = 65.0
NAUGHTY_SECS = 12 * 3600.0
MAX_NAUGHTY = 1000


class Failure(str, Enum):
    """What kind of failure ended (or prevented) a connection."""

    TRANSIENT = "transient"
    RATE_LIMITED = "rate-limited"
    DNS = "dns"
    TLS = "tls"
    PROTOCOL = "protocol"
    #: The name resolved to an address the fetch policy refuses (S3.4).
    POLICY = "policy"

    @property
    def naughty(self) -> bool:
        return self in (Failure.DNS, Failure.TLS, Failure.PROTOCOL, Failure.POLICY)


class NaughtyList:
    """Peers left alone until a time, bounded to ``max_entries``; expired entries vanish."""

    def __init__(self, max_entries: int = MAX_NAUGHTY, secs: float = NAUGHTY_SECS) -> None:
        if max_entries < 1 or secs <= 0:
            raise ValueError("a naughty list needs max_entries >= 1 and secs > 0")
        self.max_entries = max_entries
        self.secs = secs
        self._until: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._until)

    def add(self, url: str, now: float, until: float | None = None) -> float:
        """Put ``url`` on the list (until ``until``, default ``now + secs``); returns the end."""
        self.expire(now)
        end = now + self.secs if until is None else until
        self._until[url] = end
        while len(self._until) > self.max_entries:
            del self._until[min(self._until, key=self._until.__getitem__)]
        return end

    def until(self, url: str, now: float) -> float | None:
        """When ``url`` comes off the list, or None when it is not on it (any more)."""
        end = self._until.get(url)
        if end is None or end > now:
            return end
        del self._until[url]
        return None

    def expire(self, now: float) -> None:
        for url in [u for u, end in self._until.items() if end <= now]:
            del self._until[url]


@dataclass
class PeerHealth:
    """One peer's failures and when it may be tried again."""

    url: str
    naughty: NaughtyList
    failures: int = 0
    next_attempt_at: float | None = None
    last_error: str | None = None
    initial: float = BACKOFF_INITIAL_SECS
    maximum: float = BACKOFF_MAX_SECS
    cool_down: float = COOL_DOWN_SECS

    def wait(self, now: float) -> float:
        """Seconds until the peer may be connected to (0 when it may be now)."""
        due = max(self.next_attempt_at or 0.0, self.naughty.until(self.url, now) or 0.0)
        return max(due - now, 0.0)

    def failed(self, failure: Failure, error: str, now: float) -> float:
        """Record a failure; returns the delay before the next attempt."""
        self.last_error = f"{failure.value}: {error}" if failure.naughty else error
        if failure is Failure.RATE_LIMITED:
            delay = max(self.cool_down, self._backoff_delay(self.failures))
        else:
            self.failures += 1
            delay = self._backoff_delay(self.failures - 1)
            if failure.naughty:
                delay = max(delay, self.naughty.add(self.url, now) - now)
        self.next_attempt_at = now + delay
        return delay

    def caught_up(self) -> None:
        """A connection finished its history: the peer is healthy again."""
        self.failures = 0
        self.next_attempt_at = None

    def _backoff_delay(self, exponent: int) -> float:
        return min(self.initial * 2 ** min(exponent, 30), self.maximum)
