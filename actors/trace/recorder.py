"""Recording message traces (S13.3): one line per delivered message and per port answer.

A line is written when the receiving actor takes a message out of its inbox, with the very
``now`` the actor then decides with; an answer to an ask is a ``Reply`` line from the asked
actor; what the ``SyncContext`` port returned to an actor is a ``PortAnswer`` line from that
actor to :data:`~actors.names.PORT`. Together these are every input an actor had, which is
what lets :mod:`actors.trace.replay` feed any actor its trace again.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO, Any, Protocol

from messages import to_json

from .format import TraceLine, encode_line

__all__ = ["JsonlTracer", "MemoryTracer", "NullTracer", "Tracer"]


class Tracer(Protocol):
    enabled: bool

    def record(self, t: float, sender: str, receiver: str, msg: Any) -> None: ...

    def close(self) -> None: ...


class NullTracer:
    """Records nothing (the default): callers check ``enabled`` before building a line."""

    enabled = False

    def record(self, t: float, sender: str, receiver: str, msg: Any) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryTracer:
    """Keeps the lines in memory as :class:`~actors.trace.format.TraceLine` (tests)."""

    enabled = True

    def __init__(self) -> None:
        self.lines: list[TraceLine] = []
        self._lock = threading.Lock()

    def record(self, t: float, sender: str, receiver: str, msg: Any) -> None:
        with self._lock:
            seq = len(self.lines) + 1
            self.lines.append(TraceLine(seq, round(t, 6), sender, receiver, to_json(msg)))

    def close(self) -> None:
        pass


class JsonlTracer:
    """Appends lines to a file; each line is flushed so a killed process leaves a usable trace."""

    enabled = True

    def __init__(self, path: Path | str) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._seq = 0
        self._lock = threading.Lock()

    def record(self, t: float, sender: str, receiver: str, msg: Any) -> None:
        with self._lock:
            self._seq += 1
            self._file.write(encode_line(self._seq, t, sender, receiver, to_json(msg)) + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()
