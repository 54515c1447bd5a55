"""Reading a rendered trace page back (ElementTree over its inline SVG), for the viewer tests.

``check_diagram`` is the contract every rendered trace must meet: a lifeline per actor, an
arrow per drawn message between the right lifelines, domain colours, dashed replies, a
monotonic time axis, nothing loaded from anywhere. On the default (folded) view the idle Ticks
inside a fold are the only messages without an arrow, and they are exactly the inner Ticks of
runs of consecutive Ticks (S13.3 traces, the viewer's folding rule).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from actors.trace.format import load_trace
from actors.trace.view.__main__ import main
from actors.trace.view.layout import incarnations

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "tests" / "traces"
SVG = "{http://www.w3.org/2000/svg}"


def render(tmp_path: Path, trace: Path, *extra: str) -> str:
    out = tmp_path / "out.html"
    assert main([str(trace), "-o", str(out), *extra]) == 0
    return out.read_text(encoding="utf-8")


def write_trace(path: Path, rows: list[tuple[float, str, str, dict[str, Any]]]) -> Path:
    """A JSONL trace of ``(t, from, to, msg)`` rows, seq numbered from 1."""
    path.write_text(
        "".join(
            json.dumps({"seq": i, "t": t, "from": a, "to": b, "msg": msg}) + "\n"
            for i, (t, a, b, msg) in enumerate(rows, 1)
        ),
        encoding="utf-8",
    )
    return path


def svg(page: str, svg_id: str) -> ET.Element:
    match = re.search(rf'<svg id="{svg_id}".*?</svg>', page, re.S)
    assert match, svg_id
    return ET.fromstring(match.group(0))


def complete_view(page: str) -> str:
    """The id of the diagram that draws every message: the "show all Ticks" one when the
    page has two, else the only one."""
    return "diagram-all" if 'id="diagram-all"' in page else "diagram"


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if cls in g.get("class", "").split()]


def lifeline_geometry(root: ET.Element) -> dict[str, dict]:
    """lifeline key -> actor, x, kind, stroke colour, lane and the y span it is alive."""
    result = {}
    for g in groups(root, "lifeline"):
        shape = g.find(f"{SVG}line") if g.get("data-kind") == "long" else g.find(f"{SVG}rect")
        if g.get("data-kind") == "long":
            x, y0, y1 = float(shape.get("x1")), float(shape.get("y1")), float(shape.get("y2"))
        else:
            x = float(shape.get("x")) + float(shape.get("width")) / 2
            y0 = float(shape.get("y"))
            y1 = y0 + float(shape.get("height"))
        result[g.get("data-key")] = {
            "actor": g.get("data-actor"),
            "x": x,
            "y0": y0,
            "y1": y1,
            "kind": g.get("data-kind"),
            "lane": g.get("data-lane"),
            "colour": shape.get("stroke"),
        }
    return result


def arrows(root: ET.Element) -> list[dict]:
    result = []
    for g in groups(root, "msg"):
        line = g.find(f"{SVG}line")
        shape = line if line is not None else g.find(f"{SVG}path")
        entry = {k[5:]: v for k, v in g.attrib.items() if k.startswith("data-")}
        entry.update(
            stroke=shape.get("stroke"),
            dashed=shape.get("stroke-dasharray") is not None,
            label=g.find(f"{SVG}text").text,
            classes=g.get("class").split(),
        )
        if line is not None:
            entry.update(
                x1=float(line.get("x1")), x2=float(line.get("x2")), y=float(line.get("y1"))
            )
        result.append(entry)
    return result


def folds(root: ET.Element) -> list[dict]:
    """Each folded-Ticks break: its seq range, count, duration, height and marker label."""
    result = []
    for g in groups(root, "fold"):
        rect = g.find(f"{SVG}rect")
        marker = next(m for m in groups(g, "folded"))
        result.append(
            {
                "first": int(g.get("data-first-seq")),
                "last": int(g.get("data-last-seq")),
                "ticks": int(g.get("data-ticks")),
                "secs": float(g.get("data-secs")),
                "height": float(rect.get("height")),
                "y": float(rect.get("y")),
                "text": "".join(g.itertext()),
                "marker": marker.find(f"{SVG}text").text,
            }
        )
    return result


def drawn_lines(trace: Path) -> list[dict]:
    """The trace's lines the viewer draws (port answers are replay inputs, not drawn)."""
    lines = [json.loads(text) for text in trace.read_text().splitlines() if text.strip()]
    return [line for line in lines if line["msg"]["type"] != "PortAnswer"]


def tick_runs(lines: list[dict]) -> list[list[int]]:
    """The seqs of every run of consecutive timer Ticks (time not going back)."""
    runs: list[list[int]] = []
    previous = None
    for line in lines:
        tick = line["msg"]["type"] == "Tick" and line["from"] == "timer"
        if tick and previous is not None and previous["t"] <= line["t"] and runs:
            runs[-1].append(line["seq"])
        elif tick:
            runs.append([line["seq"]])
        previous = line if tick else None
    return runs


def inner_tick_seqs(lines: list[dict]) -> set[int]:
    """The test's own statement of the folding rule: in every run of consecutive Ticks from
    the timer, all but the first and the last, when that leaves at least two."""
    tick = [line["msg"]["type"] == "Tick" and line["from"] == "timer" for line in lines]
    inner: set[int] = set()
    i = 0
    while i < len(lines):
        j = i
        while tick[i] and j + 1 < len(lines) and tick[j + 1] and lines[j + 1]["t"] >= lines[j]["t"]:
            j += 1
        if tick[i] and j - i - 1 >= 2:
            inner |= {line["seq"] for line in lines[i + 1 : j]}
        i = j + 1
    return inner


def check_diagram(
    page: str, trace: Path, one_run: bool = True, svg_id: str | None = None
) -> tuple[dict, list[dict], ET.Element]:
    """The checks every rendered trace must pass; returns what the test may look at more.

    ``svg_id`` None checks the view that draws every message (see :func:`complete_view`).
    """
    all_lines = [json.loads(text) for text in trace.read_text().splitlines() if text.strip()]
    drawable = [line["msg"]["type"] != "PortAnswer" for line in all_lines]  # replay inputs
    all_lines = [line for line, keep in zip(all_lines, drawable, strict=False) if keep]
    all_ends = incarnations(
        [line for line, keep in zip(load_trace(trace), drawable, strict=False) if keep]
    )
    root = svg(page, svg_id or complete_view(page))
    folded = {seq for fold in folds(root) for seq in range(fold["first"], fold["last"] + 1)}
    assert folded <= inner_tick_seqs(all_lines)
    kept = [
        (line, end)
        for line, end in zip(all_lines, all_ends, strict=False)
        if line["seq"] not in folded
    ]
    lines, ends = [line for line, _ in kept], [end for _, end in kept]
    lives = lifeline_geometry(root)
    assert {life["actor"] for life in lives.values()} == {
        n for line in all_lines for n in (line["from"], line["to"])
    }
    assert set(lives) == {key for pair in all_ends for key in pair}
    drawn = arrows(root)
    assert [int(a["seq"]) for a in drawn] == [line["seq"] for line in lines]  # one per message
    for arrow, line, (from_key, to_key) in zip(drawn, lines, ends, strict=False):
        assert (arrow["from"], arrow["to"], arrow["type"]) == (
            line["from"],
            line["to"],
            line["msg"]["type"],
        )
        assert arrow["dashed"] == (line["msg"]["type"] == "Reply")
        assert arrow["label"].startswith("\u21a9" if arrow["dashed"] else line["msg"]["type"])
        if isinstance(line["msg"].get("identifier"), str):  # GetSyncHistory may name none
            assert line["msg"]["identifier"] in arrow["label"]
        if "x1" in arrow:  # it joins the sender's and the receiver's lifelines, alive then
            a, b = lives[from_key], lives[to_key]
            assert arrow["x1"] == pytest.approx(a["x"], abs=0.2)
            assert arrow["x2"] == pytest.approx(b["x"], abs=1.2)
            for end in (a, b):
                assert end["y0"] <= arrow["y"] <= end["y1"]
    # short-lived lifelines sharing a lane never overlap in time
    by_lane: dict[str, list[tuple[float, float]]] = {}
    for life in lives.values():
        if life["kind"] == "short":
            by_lane.setdefault(life["lane"], []).append((life["y0"], life["y1"]))
    for spans in by_lane.values():
        spans.sort()
        assert all(prev[1] < nxt[0] for prev, nxt in zip(spans, spans[1:], strict=False))
    # the time axis: ticks down the page at strictly increasing t; arrows never go back up
    ticks = [
        (float(g.find(f"{SVG}line").get("y1")), float(g.get("data-t")))
        for g in groups(root, "tick")
    ]
    assert [y for y, _ in ticks] == sorted(y for y, _ in ticks)
    assert ticks[0][1] == lines[0]["t"] and ticks[-1][1] == lines[-1]["t"]
    if one_run:
        assert [t for _, t in ticks] == sorted({t for _, t in ticks})
    ys = [a["y"] for a in drawn if "y" in a]
    assert ys == sorted(ys)
    # no asset from anywhere: nothing is loaded, references stay inside the document
    assert not re.search(r"\b(src|href)\s*=|@import", page)
    assert set(re.findall(r"url\((.)", page)) == {"#"}
    svg(page, "heads")  # the sticky actor header is well-formed too
    return lives, drawn, root


def legend_colours(page: str) -> dict[str, str]:
    return dict(
        re.findall(r'<li class="domain" data-domain="([^"]+)" data-colour="([^"]+)">', page)
    )
