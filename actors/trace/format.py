"""The trace line format (S13.3) and its one loader.

A trace is JSON Lines; each line is ``{"seq", "t", "from", "to", "msg": {"type", ...fields}}``:
``seq`` counts lines of one recording, ``t`` is the receiving actor's ``now`` (the injected
clock) when it took the message out of its inbox, ``from``/``to`` are actor names
(:mod:`actors.names`), ``msg`` is the message's JSON codec form (:func:`messages.to_json`).

Everything that reads traces — replay, the viewer, tests — goes through :func:`load_trace`, so
a malformed file fails once, here, naming the file and line. This module needs only the
standard library: the viewer runs wherever a trace file ends up.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TraceError", "TraceLine", "encode_line", "load_trace", "parse_line"]


class TraceError(Exception):
    """A trace that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class TraceLine:
    """One delivered message (or port answer) as recorded."""

    seq: int
    t: float
    sender: str
    receiver: str
    msg: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.msg["type"])


def encode_line(seq: int, t: float, sender: str, receiver: str, msg: dict[str, Any]) -> str:
    """The JSON text of one line (without the newline); ``msg`` is already codec JSON."""
    record = {"seq": seq, "t": round(t, 6), "from": sender, "to": receiver, "msg": msg}
    return json.dumps(record, separators=(",", ":"))


def load_trace(path: Path | str) -> list[TraceLine]:
    """Parse and check every line; the first bad one raises :class:`TraceError`."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = fh.readlines()
    except OSError as exc:
        raise TraceError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    lines = [parse_line(text, f"{path}:{n}") for n, text in enumerate(raw, 1) if text.strip()]
    if not lines:
        raise TraceError(f"{path} holds no trace lines")
    return lines


_FIELDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("seq", int),
    ("t", (int, float)),
    ("from", str),
    ("to", str),
    ("msg", dict),
)


def parse_line(text: str, where: str = "<trace>") -> TraceLine:
    """One line of JSON text to a :class:`TraceLine`; ``where`` prefixes the error."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise TraceError(f"{where}: a trace line is a JSON object, got {type(obj).__name__}")
    for key, kind in _FIELDS:
        value = obj.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise TraceError(f"{where}: field {key!r} missing or not a {_kind_name(kind)}")
    if not math.isfinite(obj["t"]):
        raise TraceError(f"{where}: field 't' is not a finite number")
    if not isinstance(obj["msg"].get("type"), str):
        raise TraceError(f"{where}: field 'msg.type' missing or not a string")
    return TraceLine(obj["seq"], float(obj["t"]), obj["from"], obj["to"], obj["msg"])


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return "number"
    return {"int": "integer", "str": "string", "dict": "object"}[kind.__name__]
