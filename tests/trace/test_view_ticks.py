"""Idle Ticks folded and idle gaps compressed in the trace viewer (S13.3 traces).

The Scheduler's 1 Hz ``Tick`` from the timer is most of an idle trace. By default the inner
Ticks of a run of consecutive Ticks become one fixed-height break with their count; the Ticks
at either end of a run (next to other traffic) stay rows; a checkbox shows every Tick again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.trace.format import load_trace
from actors.trace.view.layout import BREAK_H, ROW_H, STEP_PX, layout
from tests.trace.svgread import (
    TRACES,
    arrows,
    check_diagram,
    drawn_lines,
    folds,
    groups,
    render,
    svg,
    tick_runs,
    write_trace,
)

TICK = {"type": "Tick"}


def idle_trace(path: Path, idle_secs: int, step: float = 0.05) -> Path:
    """Start-up traffic ``step`` s apart, a Tick a second for ``idle_secs`` s, more traffic."""
    busy = [
        ("system", "Scheduler", {"type": "ActorStarted"}),
        ("relay", "Scheduler", {"type": "Ping"}),
        ("Scheduler", "relay", {"type": "Reply", "request": "Ping", "value": "Scheduler"}),
        *[
            ("relay", "Scheduler", {"type": "EnqueueSync", "identifier": f"repo{i}"})
            for i in range(8)
        ],
        ("timer", "Scheduler", {"type": "WakeUp"}),
    ]
    rows = [(i * step, a, b, msg) for i, (a, b, msg) in enumerate(busy)]
    rows += [(float(t), "timer", "Scheduler", TICK) for t in range(1, idle_secs + 1)]
    end = idle_secs + 0.5
    rows += [(end + i * step, a, b, msg) for i, (a, b, msg) in enumerate(busy[3:])]
    return write_trace(path, rows)


def test_s13_3_burst_folds_each_idle_gap_into_one_counted_break(tmp_path):
    trace = TRACES / "burst.jsonl"
    page = render(tmp_path, trace)
    _, drawn, root = check_diagram(page, trace, svg_id="diagram")
    found = folds(root)
    runs = [run for run in tick_runs(drawn_lines(trace)) if len(run) >= 4]
    assert [f["ticks"] for f in found] == [8] * 6
    assert [(f["first"], f["last"]) for f in found] == [(run[1], run[-2]) for run in runs]
    assert found[0]["secs"] == 9.0
    assert found[0]["marker"] == "\u22ef 8 Ticks"
    assert "9 s idle" in found[0]["text"]
    assert {f["height"] for f in found} == {BREAK_H}
    # the Ticks at each end of a run touch other traffic: they stay rows
    ticks_drawn = [int(a["seq"]) for a in drawn if a["type"] == "Tick"]
    assert len(ticks_drawn) == 12 and runs[0][0] in ticks_drawn and runs[0][-1] in ticks_drawn
    # the complete view draws all 60, and the page offers it
    complete = svg(page, "diagram-all")
    assert sum(a["type"] == "Tick" for a in arrows(complete)) == 60 and not folds(complete)
    assert '<input type="checkbox" id="all-ticks"' in page
    assert "show all Ticks (48 folded" in page
    assert float(root.get("height")) < float(complete.get("height"))


def test_s13_3_ticks_next_to_traffic_stay_rows(tmp_path):
    """e2e_backoff's runs are T, T, T, TT, TTTT and TT: only the inside of the TTTT run folds."""
    trace = TRACES / "e2e_backoff.jsonl"
    page = render(tmp_path, trace)
    _, drawn, root = check_diagram(page, trace, svg_id="diagram")
    runs = tick_runs(drawn_lines(trace))
    [long_run] = [run for run in runs if len(run) >= 4]
    assert len(long_run) == 4
    assert [(f["first"], f["last"]) for f in folds(root)] == [(long_run[1], long_run[2])]
    assert [int(a["seq"]) for a in drawn if a["type"] == "Tick"] == [
        seq for run in runs for seq in run if seq not in long_run[1:3]
    ]


def test_s13_3_a_60s_idle_stretch_takes_the_room_of_a_10s_one(tmp_path):
    short = render(tmp_path, idle_trace(tmp_path / "short.jsonl", 10))
    long_page = render(tmp_path, idle_trace(tmp_path / "long.jsonl", 60))
    heights = [float(svg(page, "diagram").get("height")) for page in (short, long_page)]
    assert heights[0] == heights[1]
    (fold,) = folds(svg(long_page, "diagram"))
    assert (fold["ticks"], fold["secs"], fold["marker"]) == (58, 59.0, "\u22ef 58 Ticks")
    assert "59 s idle (compressed)" in fold["text"]
    complete = float(svg(long_page, "diagram-all").get("height"))
    assert complete - heights[1] > 58 * ROW_H  # what the fold saves: 58 rows of a second each
    check_diagram(long_page, tmp_path / "long.jsonl", svg_id="diagram")
    check_diagram(long_page, tmp_path / "long.jsonl")


def test_s13_3_the_typical_step_ignores_folded_ticks(tmp_path):
    """Busy steps are 0.05 s and Ticks 1 s: with Ticks folded the scale follows the traffic;
    drawing every Tick, the 1 s steps set it."""
    lines = load_trace(idle_trace(tmp_path / "idle.jsonl", 60))
    folded, complete = layout(lines), layout(lines, fold_ticks=False)
    assert folded.px_per_sec == pytest.approx(STEP_PX / 0.05)
    assert complete.px_per_sec == pytest.approx(STEP_PX / 1.0)
    # the half seconds before the first and after the last Tick are > 8 typical steps: breaks
    assert [len(gap.folded) for gap in folded.gaps] == [0, 58, 0]
    assert [round(gap.secs, 3) for gap in folded.gaps] == [0.45, 59.0, 0.5]
    assert folded.folded_ticks == 58 and complete.folded_ticks == 0
    busy = [y for line, y in zip(lines, folded.ys, strict=False) if line.type != "Tick"]
    assert busy[1] - busy[0] == pytest.approx(ROW_H + 0.05 * folded.px_per_sec)  # row + time


def test_a_run_of_three_ticks_is_not_folded_and_the_page_has_one_view(tmp_path):
    trace = write_trace(
        tmp_path / "three.jsonl",
        [
            (0.0, "relay", "Scheduler", {"type": "EnqueueSync", "identifier": "a"}),
            *[(float(t), "timer", "Scheduler", TICK) for t in (1, 2, 3)],
            (3.5, "relay", "Scheduler", {"type": "EnqueueSync", "identifier": "b"}),
        ],
    )
    page = render(tmp_path, trace)
    assert 'id="diagram-all"' not in page and 'id="all-ticks"' not in page
    _, drawn, root = check_diagram(page, trace)
    assert len(drawn) == 5 and not folds(root)


def test_a_time_reset_splits_a_run_of_ticks(tmp_path):
    """Two appended runs of five Ticks: two folds, and the time reset between them shown."""
    rows = [(float(t), "timer", "Scheduler", TICK) for t in (1, 2, 3, 4, 5)]
    trace = write_trace(tmp_path / "reset.jsonl", rows + rows)
    page = render(tmp_path, trace)
    root = svg(page, "diagram")
    assert [(f["first"], f["last"]) for f in folds(root)] == [(2, 4), (7, 9)]
    assert [float(g.get("data-secs")) for g in groups(root, "gap")] == [4.0, -4.0, 4.0]
    check_diagram(page, trace, one_run=False, svg_id="diagram")
