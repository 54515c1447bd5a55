"""Render a message trace (S13.3) as a sequence diagram in one self-contained HTML file.

    scripts/trace-view tests/traces/burst.jsonl -o burst.html
    python -m actors.traceview TRACE.jsonl [-o OUT.html] [--from-seq N] [--max-messages N]

Reading a thousand JSON lines to find why a throttle stalled is slow; a picture of who told whom
what, and when, is fast. The layout decisions, and why:

- Long-lived actors (relay, system, timer, Supervisor, Scheduler, Releaser, every
  ``DomainThrottle[domain]``) get a column each. FetchActors live for one unit of work and a
  busy trace has over a hundred of them, so they are *short-lived lifelines* packed into
  reusable lanes (interval colouring): a lane holds FetchActor-3 and later FetchActor-17, never
  two at once. Width then grows with the peak concurrency, not with the trace length.
- Each message is one row (many messages share an instant); time adds space between rows in
  proportion to how much passed. The scale makes the 90th-percentile pause about 40 px; a pause
  longer than eight of those is drawn as a fixed-height, marked break instead, so an idle hour
  does not become a kilometre of nothing. The axis labels every instant where time moved.
- Everything to do with one remote domain (its DomainThrottle, ``FetchFromDomain``, ``TryStart``
  and any arrow to or from the throttle, the lane segment of a throttle-path fetch) shares the
  domain's colour. Replies are dashed; lifecycle traffic (ActorStarted, Ping, Shutdown) is grey.

The module needs only the standard library (it never imports the actor runtime), so the viewer
runs anywhere a trace file ends up. Rendering lives in :mod:`actors.traceview_render`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from actors.names import EXTERNAL, RELEASER, SCHEDULER, SUPERVISOR, SYSTEM, TIMER
from actors.trace.format import TraceError, TraceLine, load_trace

__all__ = ["Layout", "TraceError", "TraceLine", "incarnations", "layout", "load_trace", "main"]

SHORT_LIVED = re.compile(r"FetchActor-\d+")
THROTTLE = re.compile(r"DomainThrottle\[(.+)\]")
#: Long-lived actors in this order when present; the rest follow in order of appearance.
COLUMN_ORDER = (EXTERNAL, SYSTEM, TIMER, SUPERVISOR, SCHEDULER, RELEASER)

AXIS_W, COL_W, TOP, ROW_H = 96, 150, 16, 18
LANE_W_MAX, LANE_W_MIN, LANES_BUDGET = 84, 44, 1500  # lanes shrink to fit the budget
STEP_PX, BREAK_FACTOR, BREAK_H = 40.0, 8.0, 34


# -- layout (pure: lines in, coordinates out) -------------------------------------------------


@dataclass
class Lifeline:
    name: str
    x: float
    short: bool
    domain: str | None = None
    lane: int | None = None
    y_from: float = 0.0
    y_to: float = 0.0


@dataclass
class Gap:
    """A pause drawn as a marked break; ``secs`` < 0 when time went back (a second run)."""

    y_top: float
    y_bottom: float
    secs: float


@dataclass
class Layout:
    lines: list[TraceLine]
    lifelines: dict[str, Lifeline]  # by lifeline key (see :func:`incarnations`)
    ends: list[tuple[str, str]]  # per message: the sender's and the receiver's lifeline key
    ys: list[float]
    ticks: list[tuple[float, float]]  # (y, t) where time moved
    gaps: list[Gap]
    domains: list[str]
    width: float
    height: float
    lane_w: float
    lanes: int
    px_per_sec: float
    skipped: dict[str, int] = field(default_factory=dict)


def domain_of(line: TraceLine) -> str | None:
    """The remote domain a message is about, if any: its own field or a DomainThrottle end."""
    value = line.msg.get("domain")
    if isinstance(value, str):
        return value
    for end in (line.sender, line.receiver):
        match = THROTTLE.fullmatch(end)
        if match:
            return match.group(1)
    return None


def layout(lines: Sequence[TraceLine]) -> Layout:
    lines = list(lines)
    ys, ticks, gaps, scale = _rows(lines)
    names: list[str] = []
    for line in lines:
        names.extend(n for n in (line.sender, line.receiver) if n not in names)
    domains: list[str] = []
    for line in lines:
        d = domain_of(line)
        if d is not None and d not in domains:
            domains.append(d)
    long_names = [n for n in COLUMN_ORDER if n in names]
    long_names += [n for n in names if THROTTLE.fullmatch(n) and n not in long_names]
    long_names += [n for n in names if not SHORT_LIVED.fullmatch(n) and n not in long_names]
    lifelines = {n: Lifeline(n, AXIS_W + COL_W * (i + 0.5), False, _throttle_domain(n))
                 for i, n in enumerate(long_names)}
    ends = incarnations(lines)
    lanes, lane_w = _pack_short_lived(lines, ends, ys, lifelines, AXIS_W + COL_W * len(long_names))
    height = (ys[-1] if ys else TOP) + 3 * ROW_H
    for lifeline in lifelines.values():
        if not lifeline.short:
            lifeline.y_from, lifeline.y_to = 0.0, height
    width = AXIS_W + COL_W * len(long_names) + lanes * lane_w + 24
    return Layout(lines, lifelines, ends, ys, ticks, gaps, domains, width, height, lane_w, lanes,
                  scale)


def incarnations(lines: Sequence[TraceLine]) -> list[tuple[str, str]]:
    """Lifeline keys of each message's two ends.

    A trace file may hold several runs (the tracer appends), and each run numbers its
    FetchActors from 1 again. A short-lived name that receives ``ActorStarted`` after it was
    already seen is a new actor: its key becomes ``FetchActor-1~2`` and so on, so one lifeline
    does not stretch across runs. Long-lived actors keep one column whatever restarts them.
    """
    current: dict[str, str] = {}
    counts: dict[str, int] = {}
    ends = []
    for line in lines:
        name = line.receiver
        if line.msg["type"] == "ActorStarted" and SHORT_LIVED.fullmatch(name) and name in current:
            counts[name] = counts.get(name, 1) + 1
            current[name] = f"{name}~{counts[name]}"
        for end in (line.sender, line.receiver):
            current.setdefault(end, end)
        ends.append((current[line.sender], current[line.receiver]))
    return ends


def _throttle_domain(name: str) -> str | None:
    match = THROTTLE.fullmatch(name)
    return match.group(1) if match else None


def _rows(lines: list[TraceLine]) -> tuple[list[float], list[tuple[float, float]], list[Gap], float]:
    """y of every message row, the axis ticks and the compressed breaks."""
    steps = sorted(b.t - a.t for a, b in zip(lines, lines[1:]) if b.t > a.t)
    typical = steps[int(0.9 * (len(steps) - 1))] if steps else 1.0
    scale = STEP_PX / typical
    ys: list[float] = []
    ticks: list[tuple[float, float]] = []
    gaps: list[Gap] = []
    y = float(TOP)
    for i, line in enumerate(lines):
        if i:
            dt = line.t - lines[i - 1].t
            if dt > BREAK_FACTOR * typical or dt < 0:
                gaps.append(Gap(y + ROW_H / 2, y + ROW_H / 2 + BREAK_H, dt))
                y += ROW_H + BREAK_H
            else:
                y += ROW_H + dt * scale
        if i == 0 or line.t != lines[i - 1].t:
            ticks.append((y, line.t))
        ys.append(y)
    return ys, ticks, gaps, scale


def _pack_short_lived(
    lines: list[TraceLine], ends: list[tuple[str, str]], ys: list[float],
    lifelines: dict[str, Lifeline], x0: float,
) -> tuple[int, float]:
    """Give every short-lived actor a lane free for its whole life (first-fit by start)."""
    span: dict[str, list[int]] = {}
    domains: dict[str, set[str]] = {}
    for i, (line, keys) in enumerate(zip(lines, ends)):
        domain = domain_of(line)
        for name, key in zip((line.sender, line.receiver), keys):
            if SHORT_LIVED.fullmatch(name):
                span.setdefault(key, [i, i])[1] = i
                if domain is not None:
                    domains.setdefault(key, set()).add(domain)
    lane_ends: list[int] = []  # the last row of the lane's latest occupant
    assigned: dict[str, int] = {}
    for key, (first, last) in sorted(span.items(), key=lambda item: item[1][0]):
        lane = next((k for k, end in enumerate(lane_ends) if end + 1 < first), len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(last)
        else:
            lane_ends[lane] = last
        assigned[key] = lane
    lanes = len(lane_ends)
    lane_w = max(LANE_W_MIN, min(LANE_W_MAX, LANES_BUDGET / lanes)) if lanes else LANE_W_MAX
    for key, lane in assigned.items():
        first, last = span[key]
        own = domains.get(key, set())
        lifelines[key] = Lifeline(key.split("~")[0], x0 + lane_w * (lane + 0.5), True,
                                   min(own) if len(own) == 1 else None, lane,
                                   ys[first] - ROW_H * 0.6, ys[last] + ROW_H * 0.4)
    return lanes, lane_w


# -- command line -------------------------------------------------------------------------------


def _select(lines: list[TraceLine], from_seq: int | None, limit: int) -> tuple[list[TraceLine], dict]:
    skipped = {}
    if from_seq is not None:
        kept = [line for line in lines if line.seq >= from_seq]
        skipped["before"] = len(lines) - len(kept)
        lines = kept
    if len(lines) > limit:
        skipped["after"] = len(lines) - limit
        lines = lines[:limit]
    return lines, skipped


def main(argv: Sequence[str] | None = None) -> int:
    from actors.traceview_render import render_html

    parser = argparse.ArgumentParser(
        prog="trace-view", description="Render an actor message trace (S13.3) as an HTML "
        "sequence diagram (one self-contained file).")
    parser.add_argument("trace", type=Path, help="JSONL trace written with --trace")
    parser.add_argument("-o", "--output", type=Path,
                        help="HTML file to write (default: the trace path with .html)")
    parser.add_argument("--from-seq", type=int, help="start at this seq number")
    parser.add_argument("--max-messages", type=int, default=5000,
                        help="draw at most this many messages (default 5000)")
    args = parser.parse_args(argv)
    if args.max_messages < 1:
        parser.error("--max-messages must be at least 1")
    try:
        lines, skipped = _select(load_trace(args.trace), args.from_seq, args.max_messages)
        if not lines:
            raise TraceError(f"{args.trace}: no message with seq >= {args.from_seq}")
    except TraceError as exc:
        print(f"trace-view: {exc}", file=sys.stderr)
        return 2
    plan = layout(lines)
    plan.skipped = skipped
    output = args.output or args.trace.with_suffix(".html")
    try:
        output.write_text(render_html(plan, title=args.trace.name), encoding="utf-8")
    except OSError as exc:
        print(f"trace-view: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {output}: {len(lines)} messages, {len(plan.lifelines)} lifelines, "
          f"{plan.lanes} FetchActor lanes, {len(plan.gaps)} compressed gaps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
