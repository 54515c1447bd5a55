"""How the status pages write numbers, times and tables — mirrored line by line in status.js.

The server and the page's script must produce identical markup for the same snapshot
(tests/relay/observe/test_status.py runs the script under Node and compares), so every helper
here has a twin in ``static/status.js`` and formats exactly as JavaScript does: ``fixed`` is
``Number.prototype.toFixed``, ``link_path`` is ``encodeURIComponent``.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

__all__ = [
    "DASH",
    "ago",
    "bytes_text",
    "clock_text",
    "duration",
    "error",
    "esc",
    "fixed",
    "link_path",
    "secs",
    "table",
    "took",
    "value_text",
]

DASH = "\u2014"
#: What ``encodeURIComponent`` leaves alone besides letters, digits and ``-_.~``.
_URI_COMPONENT_SAFE = "!*'()"


def fixed(x: float, digits: int) -> str:
    """``x.toFixed(digits)`` as JavaScript computes it: ties round away from zero on the exact
    binary value (Python's ``format`` would round half to even and disagree on 0.25)."""
    if x == 0:
        x = 0.0  # JavaScript prints -0 as "0.0"
    step = Decimal(1).scaleb(-digits)
    return format(Decimal(x).quantize(step, rounding=ROUND_HALF_UP), "f")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def duration(d: float) -> str:
    """Seconds for people: "12.5 s", "42 min", "3 h 07 min"."""
    if d < 120:
        return fixed(d, 1) + " s"
    if d < 7200:
        return f"{int(d // 60)} min"
    return f"{int(d // 3600)} h {int(d % 3600 // 60):02d} min"


def secs(x: float | None) -> str:
    return DASH if x is None else duration(x)


def took(x: float | None) -> str:
    """How long a request took: hundredths below 10 s ("0.03 s"), else :func:`duration`."""
    if x is None:
        return DASH
    return fixed(x, 2) + " s" if x < 10 else duration(x)


def bytes_text(n: int | None) -> str:
    """A byte count for people: "512 B", "12.3 KiB", "4.0 MiB", "1.5 GiB"."""
    if n is None:
        return DASH
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return fixed(n / size, 1) + " " + unit
    return f"{n} B"


def value_text(v: object) -> str:
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else fixed(v, 2)
    return str(v)


def ago(t: object, now: float) -> str:
    """A wall-clock instant relative to the snapshot: "12.0 s ago", or "in 5.0 s" (a due time)."""
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        return value_text(t)
    return f"in {duration(t - now)}" if t > now else duration(now - t) + " ago"


def clock_text(t: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t)) + " UTC"


def link_path(prefix: str, name: str) -> str | None:
    """``prefix`` + ``encodeURIComponent(name)``; None where JavaScript would throw (a lone
    surrogate), so neither side links it."""
    try:
        return prefix + quote(name.encode("utf-8"), safe=_URI_COMPONENT_SAFE)
    except UnicodeEncodeError:
        return None


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    """Rows hold cell markup that is already escaped."""
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def error(part: Mapping[str, Any]) -> str:
    return f'<p class="error">unavailable: {esc(part["error"])}</p>' if part.get("error") else ""
