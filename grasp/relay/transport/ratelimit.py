"""The per-connection event rate limit (S15.5): generic spam prevention, answered
``rate-limited:``.

Upstream (ngit-grasp, through rust-nostr's relay builder) allows about 60 events per minute per
connection; so does this relay by default (``--event-rate-limit``). The limit is a sliding
window — at most ``limit`` EVENT messages in any ``window`` seconds — so a client that pauses is
never punished for an earlier burst longer than the window, and one that keeps sending gets
each refusal with the time it has to wait. Memory per connection is ``limit`` timestamps.

Only websocket clients are limited: events copied from sync sources (S10.7) reach the write
policy directly and never pass through a session. The clock is injected, so the rule is tested
without waiting.
"""

from __future__ import annotations

import logging
from collections import deque

from grasp.nostr.results import Prefix, Result

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_EVENTS_PER_MINUTE", "EventRateLimiter"]

#: Upstream's default: about 60 events per minute and connection.
DEFAULT_EVENTS_PER_MINUTE = 60
WINDOW_SECS = 60.0


class EventRateLimiter:
    """At most ``limit`` events in any ``window`` seconds; ``limit`` 0 means no limit."""

    def __init__(self, limit: int, window: float = WINDOW_SECS) -> None:
        if limit < 0 or window <= 0:
            raise ValueError(f"rate limit {limit} per {window} s makes no sense")
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def check(self, now: float) -> Result | None:
        """None when one more event may pass now (and counts it), else the refusal."""
        if self.limit == 0:
            return None
        while self._times and now - self._times[0] >= self.window:
            self._times.popleft()
        if len(self._times) < self.limit:
            self._times.append(now)
            return None
        wait = self.window - (now - self._times[0])
        return Result.reject(
            Prefix.RATE_LIMITED,
            f"at most {self.limit} events per {self.window:g} s per connection; "
            f"try again in {wait:.0f} s",
        )
