"""The trace diagram fits one screen (S13.3 traces): every committed trace, FetchActor lanes
included, is at most 1400 px wide, so no arrow ends beyond the first screen."""

from __future__ import annotations

import pytest

from actors.trace.view.layout import (
    AXIS_W,
    COL_W_MAX,
    COL_W_MIN,
    FIT_W,
    LANE_W_MIN,
    LANE_W_SOFT,
    RIGHT_PAD,
    fit_widths,
)
from tests.trace.svgread import (
    SVG,
    TRACES,
    arrows,
    complete_view,
    lifeline_geometry,
    render,
    svg,
)

SCREEN = 1400
COMMITTED = sorted(TRACES.glob("*.jsonl"))


@pytest.mark.parametrize("trace", COMMITTED, ids=lambda p: p.stem)
def test_s13_3_every_committed_trace_fits_a_1400px_screen(tmp_path, trace):
    page = render(tmp_path, trace)
    for svg_id in sorted({"diagram", complete_view(page)}):
        root = svg(page, svg_id)
        width = float(root.get("width"))
        assert width <= SCREEN
        for life in lifeline_geometry(root).values():
            assert AXIS_W < life["x"] and life["x"] + 3 <= width  # a lane's bar is 6 px wide
        for arrow in arrows(root):
            if "x1" in arrow:
                assert 0 < arrow["x1"] <= width and 0 < arrow["x2"] <= width
    heads = svg(page, "heads")
    assert float(heads.get("width")) <= SCREEN
    for rect in heads.iter(f"{SVG}rect"):
        assert float(rect.get("x")) >= 0
        assert float(rect.get("x")) + float(rect.get("width")) <= float(heads.get("width"))


def test_s13_3_the_burst_trace_fits_by_narrowing_lanes_and_columns(tmp_path):
    """burst.jsonl has about 20 concurrent FetchActors (their number varies with each
    recording) and nine long-lived actors: at the preferred 150 px columns and 40 px lanes it
    would be over 2000 px wide."""
    page = render(tmp_path, TRACES / "burst.jsonl")
    lives = lifeline_geometry(svg(page, "diagram"))
    lanes = sorted({float(life["x"]) for life in lives.values() if life["kind"] == "short"})
    columns = sorted(life["x"] for life in lives.values() if life["kind"] == "long")
    assert len(lanes) >= 15 and len(columns) == 9
    assert AXIS_W + 150 * len(columns) + 40 * len(lanes) > 2000  # the preferred sizes overflow
    lane_w, col_w = lanes[1] - lanes[0], columns[1] - columns[0]
    assert LANE_W_MIN <= lane_w < LANE_W_SOFT and col_w == pytest.approx(COL_W_MIN)
    assert lanes[0] > columns[-1]  # the lanes sit right of the throttles, in one block


def test_fit_widths_keeps_the_preferred_sizes_when_they_fit():
    assert fit_widths(7, 1) == (COL_W_MAX, 84.0)  # one lane is as wide as its header
    assert fit_widths(7, 5) == (COL_W_MAX, 40.0)
    assert fit_widths(8, 0) == (COL_W_MAX, 0.0)


@pytest.mark.parametrize("columns, lanes", [(7, 9), (8, 12), (9, 22), (9, 28), (11, 3)])
def test_fit_widths_narrows_to_the_budget(columns, lanes):
    col_w, lane_w = fit_widths(columns, lanes)
    assert AXIS_W + columns * col_w + lanes * lane_w + RIGHT_PAD <= FIT_W
    assert COL_W_MIN <= col_w <= COL_W_MAX and lane_w >= LANE_W_MIN
    assert lane_w >= LANE_W_SOFT or col_w == COL_W_MIN  # columns narrow before lanes get thin


def test_fit_widths_grows_past_the_budget_rather_than_below_the_minimums():
    col_w, lane_w = fit_widths(9, 60)
    assert (col_w, lane_w) == (COL_W_MIN, LANE_W_MIN)
    assert AXIS_W + 9 * col_w + 60 * lane_w + RIGHT_PAD > FIT_W


def test_fit_widths_never_widens_a_lane_when_lanes_are_added():
    widths = [fit_widths(9, lanes) for lanes in range(1, 40)]
    assert all(a[1] >= b[1] and a[0] >= b[0] for a, b in zip(widths, widths[1:], strict=False))
