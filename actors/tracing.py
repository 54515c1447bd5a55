"""Message traces: one JSON line per delivered actor message (S13.3).

A line is ``{"seq", "t", "from", "to", "msg": {"type", ...fields}}``. It is written when the
receiving actor takes the message out of its inbox, and ``t`` is the very ``now`` the actor then
decides with, so replaying a trace under a :class:`~actors.clock.FakeClock` reproduces the
decisions exactly. Answers to asks appear as ``Reply`` lines from the asked actor.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Any, Protocol

from messages import to_json

__all__ = ["JsonlTracer", "MemoryTracer", "NullTracer", "Tracer", "read_trace"]


class Tracer(Protocol):
    enabled: bool

    def record(self, t: float, sender: str, receiver: str, msg: Any) -> None: ...

    def close(self) -> None: ...


class NullTracer:
    enabled = False

    def record(self, t: float, sender: str, receiver: str, msg: Any) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryTracer:
    """Keeps the lines as dicts (tests)."""

    enabled = True

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, t: float, sender: str, receiver: str, msg: Any) -> None:
        with self._lock:
            self.lines.append(_line(len(self.lines) + 1, t, sender, receiver, msg))

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
            line = json.dumps(_line(self._seq, t, sender, receiver, msg), separators=(",", ":"))
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _line(seq: int, t: float, sender: str, receiver: str, msg: Any) -> dict[str, Any]:
    return {"seq": seq, "t": round(t, 6), "from": sender, "to": receiver, "msg": to_json(msg)}


def read_trace(path: Path | str) -> list[dict[str, Any]]:
    """Load a JSONL trace, skipping blank lines."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
