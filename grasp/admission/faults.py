"""Logging the relay's own faults without letting a client flood the log (S14.2).

``error:`` answers are for faults of the relay, never for bad input; but a fault that one
event triggers, every copy of that event triggers too. So a fault is logged with its traceback
the first time, and then at most once per window, saying how many occurrences were not logged
in between. A fault is *distinct* by its exception type and the place it was raised
(:func:`fault_key`). :class:`FaultLimiter` is pure: the caller passes the time.
"""

from __future__ import annotations

import traceback
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["FaultLimiter", "fault_key"]

#: A distinct fault is logged at most once per this many seconds.
FAULT_LOG_WINDOW_SECS = 60.0
#: Distinct faults remembered; the least recently seen is forgotten first.
MAX_DISTINCT_FAULTS = 1000


def fault_key(exc: BaseException) -> tuple[str, str, int]:
    """(exception type, file, line) of the innermost frame that raised ``exc``."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = frames[-1] if frames else None
    return (
        type(exc).__qualname__,
        where.filename if where else "?",
        (where.lineno or 0) if where else 0,
    )


@dataclass
class _Seen:
    logged_at: float
    suppressed: int = 0


class FaultLimiter:
    def __init__(
        self,
        window_secs: float = FAULT_LOG_WINDOW_SECS,
        max_distinct: int = MAX_DISTINCT_FAULTS,
    ) -> None:
        self.window_secs = window_secs
        self.max_distinct = max_distinct
        self._seen: OrderedDict[Hashable, _Seen] = OrderedDict()

    def admit(self, key: Hashable, now: float) -> int | None:
        """None: do not log this occurrence. A number: log it now, and say that many earlier
        occurrences were not logged since the last one that was."""
        seen = self._seen.get(key)
        if seen is not None:
            self._seen.move_to_end(key)
            if now - seen.logged_at < self.window_secs:
                seen.suppressed += 1
                return None
            suppressed, seen.logged_at, seen.suppressed = seen.suppressed, now, 0
            return suppressed
        self._seen[key] = _Seen(now)
        if len(self._seen) > self.max_distinct:
            self._seen.popitem(last=False)
        return 0
