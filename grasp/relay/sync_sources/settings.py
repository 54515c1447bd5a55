"""The numbers every sync source shares (S10.7), in one frozen value built once per process.

A :class:`~grasp.relay.sync_sources.source.SyncSource` used to take fourteen keyword options;
they are the same for every source of a relay, so they travel together as
:class:`SyncSourceSettings` and a source's constructor names only what is its own (its URL, the
write policy, and the clock and sleep a test may replace). Values are checked here, once, so a
bad number is refused with the field's name at start-up instead of surfacing as an odd
reconnect loop later.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grasp.relay.sync_sources.history import (
    DEFAULT_MAX_BUFFERED,
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_PAGES,
)

if TYPE_CHECKING:
    from grasp.relay.config import Config

logger = logging.getLogger(__name__)

__all__ = ["SYNC_KINDS", "SyncSourceSettings"]

#: S10.7: announcements, states, patches, PRs, PR updates, issues, statuses.
SYNC_KINDS: tuple[int, ...] = (30617, 30618, 1617, 1618, 1619, 1621, 1630, 1631, 1632, 1633)

_POSITIVE_SECONDS = (
    "backoff_initial",
    "backoff_max",
    "connect_timeout",
    "ping_interval",
    "history_timeout",
)
_POSITIVE_COUNTS = ("max_message_bytes", "max_buffered", "max_buffered_bytes", "max_pages")


@dataclass(frozen=True, slots=True)
class SyncSourceSettings:
    """How every sync source connects, pages and backs off.

    ``kinds`` to subscribe to (S10.7); ``backoff_initial``/``backoff_max`` in seconds (S10.7:
    5 s doubling, 5 min cap); ``connect_timeout`` for TCP + handshake; ``ping_interval`` — a
    ping after that long without data, a reconnect after twice that; ``history_timeout`` — a
    history page that brings no event and no EOSE for that long ends the connection;
    ``resume_overlap`` seconds subtracted from the resume point; ``max_message_bytes`` per
    message (bigger ones are skipped and counted invalid, S10.1's client limit by default);
    ``max_buffered``, ``max_buffered_bytes`` and ``max_pages`` bound the history walk.
    """

    kinds: tuple[int, ...] = SYNC_KINDS
    backoff_initial: float = 5.0
    backoff_max: float = 300.0
    connect_timeout: float = 10.0
    ping_interval: float = 30.0
    history_timeout: float = 60.0
    resume_overlap: int = 300
    max_message_bytes: int = 512 * 1024
    max_buffered: int = DEFAULT_MAX_BUFFERED
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES
    max_pages: int = DEFAULT_MAX_PAGES

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(self.kinds))  # a list would make it unhashable
        if not self.kinds or not all(_is_kind(k) for k in self.kinds):
            raise ValueError(f"sync source kinds must be event kinds 0..65535, got {self.kinds!r}")
        for name in _POSITIVE_SECONDS:
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"sync source {name} must be a positive number of seconds, got {value!r}"
                )
        if self.backoff_max < self.backoff_initial:
            raise ValueError(
                f"sync source backoff_max ({self.backoff_max!r}) is below "
                f"backoff_initial ({self.backoff_initial!r})"
            )
        if not _is_int(self.resume_overlap) or self.resume_overlap < 0:
            raise ValueError(
                f"sync source resume_overlap must be whole seconds >= 0, "
                f"got {self.resume_overlap!r}"
            )
        for name in _POSITIVE_COUNTS:
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise ValueError(f"sync source {name} must be a positive integer, got {value!r}")

    @classmethod
    def from_config(cls, config: Config) -> SyncSourceSettings:
        """The settings of a relay: a synced event may be as large as a published one (S10.1)."""
        return cls(max_message_bytes=config.max_message_bytes)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_kind(value: object) -> bool:
    return _is_int(value) and 0 <= value <= 65535  # type: ignore[operator]
