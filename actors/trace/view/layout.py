"""Where everything in a trace diagram goes: trace lines in, coordinates out (pure).

Reading a thousand JSON lines to find why a throttle stalled is slow; a picture of who told
whom what, and when, is fast. The layout decisions, and why:

- **Columns.** Long-lived actors (relay, system, timer, Supervisor, Scheduler, Releaser, every
  ``DomainThrottle[domain]``) get a column each, in that order, then any other long-lived name
  in order of appearance.
- **Lanes.** FetchActors live for one unit of work and a busy trace has over a hundred of
  them, so they are *short-lived lifelines* packed into reusable lanes right of the throttles
  (interval colouring, first fit by start, which needs no more lanes than the peak
  concurrency): a lane holds FetchActor-3 and later FetchActor-17, never two at once. Width
  grows with the peak concurrency, not with the trace length.
- **One screen wide.** The whole diagram of a typical trace fits a 1400 px wide window with its
  vertical scrollbar (:data:`FIT_W`, 1384 px), so no arrow ends off-screen. When the preferred
  widths (150 px columns, 40 px lanes) do not fit, lanes narrow first (to 24 px: a bar and its
  vertical number still read), then columns (to 104 px: a head's ``[alpha.example]`` still
  fits), then lanes again (to 12 px). Only a trace beyond those minimums (with nine columns,
  28 concurrent FetchActors) is wider. Narrowing was chosen over interleaving lanes between
  columns: the lanes already sit next to the throttles, the actors FetchActors talk to most,
  and one block of lanes keeps one lane header.
- **Rows and time.** Each drawn message is one row (many messages share an instant); time
  adds space between rows in proportion to how much passed. The scale makes the
  90th-percentile step between *drawn* rows about 40 px; a pause longer than eight of those is
  a fixed-height, marked break, so an idle hour does not become a kilometre of nothing. The
  axis labels every drawn instant where time moved.
- **Idle Ticks folded.** The Scheduler's periodic ``Tick`` (``from: "timer"``) is most of an
  idle trace. Inside a run of consecutive Ticks (no other message in between) every Tick but
  the first and the last is folded: the first and last touch other traffic (or the trace's
  ends), so they stay normal rows and give the idle stretch its start and end. The folded ones
  become one fixed-height break labelled with their count and the time between the rows
  around it, so a 60 s idle stretch takes the room of a short one; steps inside a fold do not
  count towards the typical step. ``layout(lines, fold_ticks=False)`` lays out every row (the
  page's "show all Ticks" view).
- **Runs.** A trace file may hold several runs (the tracer appends); see :func:`incarnations`.

Only the standard library and :mod:`actors.trace.format` are imported: the viewer runs
anywhere a trace file ends up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from actors.names import (
    EXTERNAL,
    RELEASER,
    SCHEDULER,
    SUPERVISOR,
    SYSTEM,
    TIMER,
    is_fetch_name,
    parse_throttle_name,
)
from actors.trace.format import TraceLine

__all__ = [
    "Gap",
    "Layout",
    "Lifeline",
    "domain_of",
    "fit_widths",
    "idle_tick_runs",
    "incarnations",
    "layout",
]

#: Long-lived actors in this order when present; the rest follow in order of appearance.
COLUMN_ORDER = (EXTERNAL, SYSTEM, TIMER, SUPERVISOR, SCHEDULER, RELEASER)
#: The periodic message that is folded, and who sends it.
TICK, TICK_SENDER = "Tick", TIMER
MIN_FOLD = 2  # folding one Tick would replace a row by a taller break

AXIS_W, TOP, ROW_H, RIGHT_PAD = 96, 16, 18, 16
FIT_W = 1384  # a 1400 px window less its vertical scrollbar
COL_W_MAX, COL_W_MIN = 150.0, 104.0
LANE_W, LANE_W_SOFT, LANE_W_MIN = 40.0, 24.0, 12.0
LANES_HEAD_W = 84.0  # the lanes' header box ("FetchActors / n lanes") needs this much
STEP_PX, BREAK_FACTOR, BREAK_H = 40.0, 8.0, 34


@dataclass
class Lifeline:
    name: str
    x: float
    short: bool
    domain: str | None = None
    lane: int | None = None
    y_from: float = 0.0
    y_to: float = 0.0


@dataclass(frozen=True)
class Gap:
    """A pause drawn as a marked break; ``secs`` < 0 when time went back (a second run).

    ``folded`` holds the indices (into ``Layout.lines``) of the idle Ticks this break stands
    for; it is empty for a plain long pause.
    """

    y_top: float
    y_bottom: float
    secs: float
    folded: range = range(0)


@dataclass
class Layout:
    lines: list[TraceLine]
    lifelines: dict[str, Lifeline]  # by lifeline key (see :func:`incarnations`)
    ends: list[tuple[str, str]]  # per message: the sender's and the receiver's lifeline key
    ys: list[float]  # per message; a folded Tick has its break's middle
    ticks: list[tuple[float, float]]  # (y, t) where time moved
    gaps: list[Gap]
    domains: list[str]
    width: float
    height: float
    col_w: float
    lane_w: float
    lanes: int
    px_per_sec: float
    hidden: frozenset[int] = frozenset()  # indices of folded Ticks (not drawn as rows)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def folded_ticks(self) -> int:
        return len(self.hidden)


def domain_of(line: TraceLine) -> str | None:
    """The remote domain a message is about, if any: its own field or a DomainThrottle end."""
    value = line.msg.get("domain")
    if isinstance(value, str):
        return value
    for end in (line.sender, line.receiver):
        domain = parse_throttle_name(end)
        if domain is not None:
            return domain
    return None


def layout(lines: Sequence[TraceLine], fold_ticks: bool = True) -> Layout:
    """Coordinates of every lifeline, row, axis tick and break of one diagram."""
    lines = list(lines)
    folds = idle_tick_runs(lines) if fold_ticks else []
    ys, ticks, gaps, scale = _rows(lines, folds)
    long_names, domains = _long_lived(lines), _domains(lines)
    ends = incarnations(lines)
    span, lane_of, fetch_domains = _lanes(lines, ends)
    lanes = max(lane_of.values(), default=-1) + 1
    col_w, lane_w = fit_widths(len(long_names), lanes)
    lifelines = {
        n: Lifeline(n, AXIS_W + col_w * (i + 0.5), False, parse_throttle_name(n))
        for i, n in enumerate(long_names)
    }
    x0 = AXIS_W + col_w * len(long_names)
    for key, lane in lane_of.items():
        first, last = span[key]
        own = fetch_domains.get(key, set())
        lifelines[key] = Lifeline(
            key.split("~")[0],
            x0 + lane_w * (lane + 0.5),
            True,
            min(own) if len(own) == 1 else None,
            lane,
            ys[first] - ROW_H * 0.6,
            ys[last] + ROW_H * 0.4,
        )
    height = (max(ys) if ys else TOP) + 3 * ROW_H
    for lifeline in lifelines.values():
        if not lifeline.short:
            lifeline.y_from, lifeline.y_to = 0.0, height
    width = x0 + lanes * lane_w + RIGHT_PAD
    hidden = frozenset(i for fold in folds for i in fold)
    return Layout(
        lines,
        lifelines,
        ends,
        ys,
        ticks,
        gaps,
        domains,
        width,
        height,
        col_w,
        lane_w,
        lanes,
        scale,
        hidden,
    )


def fit_widths(columns: int, lanes: int, budget: float = FIT_W) -> tuple[float, float]:
    """Column and lane width so the diagram fits ``budget`` px (see the module docstring).

    Narrows lanes to the soft minimum, then columns to theirs, then lanes to the hard
    minimum; beyond that the diagram is wider than the budget rather than unreadable.
    """
    avail = budget - AXIS_W - RIGHT_PAD
    preferred = max(LANE_W, LANES_HEAD_W / lanes) if lanes else 0.0
    if columns * COL_W_MAX + lanes * preferred <= avail:
        return COL_W_MAX, preferred
    if not lanes:
        return max(COL_W_MIN, _floor(avail / columns)), 0.0
    lane_w = _floor((avail - columns * COL_W_MAX) / lanes)
    if lane_w >= LANE_W_SOFT:
        return COL_W_MAX, lane_w
    col_w = _floor((avail - lanes * LANE_W_SOFT) / columns) if columns else COL_W_MIN
    if col_w >= COL_W_MIN:
        return col_w, LANE_W_SOFT
    return COL_W_MIN, max(LANE_W_MIN, _floor((avail - columns * COL_W_MIN) / lanes))


def _floor(px: float) -> float:
    """A tenth of a pixel down, so rounding never pushes the total over the budget."""
    return int(px * 10) / 10


def idle_tick_runs(lines: Sequence[TraceLine]) -> list[range]:
    """Index ranges of the Ticks to fold: the inside of every run of consecutive idle Ticks.

    A run is consecutive Tick lines from the timer to one receiver, in non-decreasing time (a
    time reset between two runs of a file is shown, never folded away). Its first and last Tick
    stay drawn; the inside is folded when it holds at least :data:`MIN_FOLD` Ticks.
    """
    runs: list[range] = []
    i = 0
    while i < len(lines):
        if not _is_tick(lines[i]):
            i += 1
            continue
        j = i
        while (
            j + 1 < len(lines)
            and _is_tick(lines[j + 1])
            and lines[j + 1].receiver == lines[i].receiver
            and lines[j + 1].t >= lines[j].t
        ):
            j += 1
        if j - i - 1 >= MIN_FOLD:
            runs.append(range(i + 1, j))
        i = j + 1
    return runs


def _is_tick(line: TraceLine) -> bool:
    return line.type == TICK and line.sender == TICK_SENDER


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
        if line.type == "ActorStarted" and is_fetch_name(name) and name in current:
            counts[name] = counts.get(name, 1) + 1
            current[name] = f"{name}~{counts[name]}"
        for end in (line.sender, line.receiver):
            current.setdefault(end, end)
        ends.append((current[line.sender], current[line.receiver]))
    return ends


def _long_lived(lines: list[TraceLine]) -> list[str]:
    names: list[str] = []
    for line in lines:
        names.extend(n for n in (line.sender, line.receiver) if n not in names)
    ordered = [n for n in COLUMN_ORDER if n in names]
    ordered += [n for n in names if parse_throttle_name(n) and n not in ordered]
    ordered += [n for n in names if not is_fetch_name(n) and n not in ordered]
    return ordered


def _domains(lines: list[TraceLine]) -> list[str]:
    domains: list[str] = []
    for line in lines:
        d = domain_of(line)
        if d is not None and d not in domains:
            domains.append(d)
    return domains


def _rows(
    lines: list[TraceLine],
    folds: list[range],
) -> tuple[list[float], list[tuple[float, float]], list[Gap], float]:
    """y of every message row, the axis ticks, the compressed breaks and px per second."""
    hidden = {i for fold in folds for i in fold}
    fold_after = {fold.start - 1: fold for fold in folds}  # the drawn row before each fold
    shown = [i for i in range(len(lines)) if i not in hidden]
    steps = sorted(
        lines[b].t - lines[a].t
        for a, b in zip(shown, shown[1:], strict=False)
        if a not in fold_after and lines[b].t > lines[a].t
    )
    typical = steps[int(0.9 * (len(steps) - 1))] if steps else 1.0
    scale = STEP_PX / typical
    ys = [0.0] * len(lines)
    ticks: list[tuple[float, float]] = []
    gaps: list[Gap] = []
    y, prev = float(TOP), None
    for i in shown:
        if prev is not None:
            dt = lines[i].t - lines[prev].t
            fold = fold_after.get(prev)
            if fold is not None or dt > BREAK_FACTOR * typical or dt < 0:
                gap = Gap(y + ROW_H / 2, y + ROW_H / 2 + BREAK_H, dt, fold or range(0))
                gaps.append(gap)
                for k in gap.folded:
                    ys[k] = (gap.y_top + gap.y_bottom) / 2
                y += ROW_H + BREAK_H
            else:
                y += ROW_H + dt * scale
        if prev is None or lines[i].t != lines[prev].t:
            ticks.append((y, lines[i].t))
        ys[i], prev = y, i
    return ys, ticks, gaps, scale


def _lanes(
    lines: list[TraceLine],
    ends: list[tuple[str, str]],
) -> tuple[dict[str, list[int]], dict[str, int], dict[str, set[str]]]:
    """Give every short-lived actor a lane free for its whole life (first fit by start).

    Returns each short-lived key's first and last row, its lane, and the domains its
    messages were about (a lane segment takes the colour of its only domain).
    """
    span: dict[str, list[int]] = {}
    domains: dict[str, set[str]] = {}
    for i, (line, keys) in enumerate(zip(lines, ends, strict=False)):
        domain = domain_of(line)
        for name, key in zip((line.sender, line.receiver), keys, strict=False):
            if is_fetch_name(name):
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
    return span, assigned, domains
