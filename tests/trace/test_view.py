"""The trace viewer (S13.3 traces as sequence diagrams): read the rendered SVG back and check
that it says what the trace says: a lifeline per actor, an arrow per message between the right
lifelines, domain colours, dashed replies, a monotonic time axis, compressed idle gaps."""

from __future__ import annotations

import json
import subprocess

import pytest

from actors.trace.format import load_trace
from actors.trace.view.__main__ import main
from actors.trace.view.svg import PALETTE
from tests.trace.svgread import (
    ROOT,
    TRACES,
    arrows,
    check_diagram,
    drawn_lines,
    groups,
    legend_colours,
    render,
    svg,
)


@pytest.mark.parametrize("trace", sorted(TRACES.glob("*.jsonl")), ids=lambda p: p.stem)
def test_s13_3_every_committed_trace_renders(tmp_path, trace):
    page = render(tmp_path, trace)
    check_diagram(page, trace)  # every message drawn ("show all Ticks" when Ticks were folded)
    check_diagram(page, trace, svg_id="diagram")  # the default view: idle Ticks folded


def test_s13_3_burst_trace_renders_every_actor_and_message(tmp_path):
    trace = TRACES / "burst.jsonl"
    page = render(tmp_path, trace)
    lives, drawn, root = check_diagram(page, trace)
    colours = legend_colours(page)
    domains = ("alpha.example", "beta.example", "gamma.example")
    assert set(colours) == set(domains) and len(set(colours.values())) == 3
    assert set(colours.values()) <= set(PALETTE)
    for domain in domains:
        assert lives[f"DomainThrottle[{domain}]"]["colour"] == colours[domain]
    coloured = [a for a in drawn if a["type"] in ("FetchFromDomain", "TryStart")]
    assert {a["type"] for a in coloured} == {"FetchFromDomain", "TryStart"}
    for arrow in coloured:
        assert arrow["stroke"] == colours[arrow["domain"]], arrow
        throttle_end = arrow["from"] if arrow["type"] == "FetchFromDomain" else arrow["to"]
        assert throttle_end == f"DomainThrottle[{arrow['domain']}]"
    # 100+ FetchActors packed into lanes keep the page a sane width
    short = [life for life in lives.values() if life["kind"] == "short"]
    lines = load_trace(trace)
    fetch_actors = {
        n for line in lines for n in (line.sender, line.receiver) if n.startswith("FetchActor-")
    }
    assert len(short) == len(fetch_actors) > 80
    assert len({life["lane"] for life in short}) < 30
    assert float(root.get("width")) < 3000


def test_s13_3_partial_oids_trace(tmp_path):
    trace = TRACES / "partial_oids.jsonl"
    page = render(tmp_path, trace)
    lives, drawn, _ = check_diagram(page, trace)
    assert set(legend_colours(page)) == {"first.example", "second.example"}
    assert [n for n, life in lives.items() if life["kind"] == "short"] == ["FetchActor-1"]
    sync = next(a for a in drawn if a["type"] == "SyncIdentifier")
    assert sync["label"] == "SyncIdentifier split"


def test_long_idle_gaps_are_compressed_and_marked(tmp_path):
    trace = tmp_path / "gap.jsonl"
    times = [0.0, 0.5, 1.0, 1.5, 3601.5, 3602.0]
    trace.write_text(
        "".join(
            json.dumps(
                {"seq": i + 1, "t": t, "from": "timer", "to": "Scheduler", "msg": {"type": "Tick"}}
            )
            + "\n"
            for i, t in enumerate(times)
        )
    )
    page = render(tmp_path, trace)
    _, drawn, root = check_diagram(page, trace)
    gaps = groups(root, "gap")
    assert [float(g.get("data-secs")) for g in gaps] == [3600.0]
    assert "1 h 00 min idle" in "".join(gaps[0].itertext())
    ys = [a["y"] for a in drawn]
    steps = [b - a for a, b in zip(ys, ys[1:], strict=False)]
    assert steps[3] < 4 * steps[0]  # an hour takes less room than two seconds would triple


def test_appended_runs_get_fresh_lifelines_and_a_marked_time_reset(tmp_path):
    """The tracer appends: a second run restarts seq, t and the FetchActor numbers."""
    trace = tmp_path / "two_runs.jsonl"
    trace.write_text((TRACES / "partial_oids.jsonl").read_text() * 2)
    page = render(tmp_path, trace)
    lives, _, root = check_diagram(page, trace, one_run=False)
    fetchers = {key: life for key, life in lives.items() if life["actor"] == "FetchActor-1"}
    assert set(fetchers) == {"FetchActor-1", "FetchActor-1~2"}
    assert {life["lane"] for life in fetchers.values()} == {"0"}  # one lane, reused
    assert [float(g.get("data-secs")) for g in groups(root, "gap")] == [-0.5]
    assert page.count('id="seq-1"') == 1  # link targets stay unique


def test_hostile_text_stays_text(tmp_path):
    trace = tmp_path / "hostile.jsonl"
    identifier = "<script>alert(1)</script>&\"'\x01"
    trace.write_text(
        json.dumps(
            {
                "seq": 1,
                "t": 1.0,
                "from": "relay",
                "to": "Scheduler",
                "msg": {"type": "EnqueueSync", "identifier": identifier},
            }
        )
        + "\n"
    )
    page = render(tmp_path, trace)
    assert "<script" not in page
    label = arrows(svg(page, "diagram"))[0]["label"]
    assert label == "EnqueueSync <script>alert(1)</script>&\"'\ufffd"


def test_window_of_a_long_trace(tmp_path):
    page = render(
        tmp_path, TRACES / "partial_oids.jsonl", "--from-seq", "10", "--max-messages", "5"
    )
    seqs = [int(a["seq"]) for a in arrows(svg(page, "diagram"))]
    assert seqs == [10, 11, 12, 13, 20]  # 14-19 are port answers (not drawn)
    drawn = [line["seq"] for line in drawn_lines(TRACES / "partial_oids.jsonl")]
    earlier, later = sum(q < 10 for q in drawn), sum(q > 20 for q in drawn)
    assert (earlier, later) == (9, len(drawn) - 14)
    assert f"{earlier} earlier messages not shown" in page
    assert f"{later} later messages not shown" in page


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "cannot read"),
        ("", "holds no trace lines"),
        ('{"seq":1,"t":1,"from":"a","to":"b","msg":{"type":"Tick"}}\n{"seq": 2,\n', ":2: not JSON"),
        ("[1, 2]\n", ":1: a trace line is a JSON object"),
        ('{"seq":1,"t":"soon","from":"a","to":"b","msg":{"type":"Tick"}}\n', "field 't'"),
        ('{"seq":1,"t":1,"from":"a","to":"b","msg":{}}\n', "'msg.type'"),
        (b"\xff\xfe\n", "is not UTF-8"),
    ],
)
def test_a_bad_trace_is_a_clear_error_and_exit_2(tmp_path, capsys, content, expected):
    trace = tmp_path / "bad.jsonl"
    if isinstance(content, bytes):
        trace.write_bytes(content)
    elif content is not None:
        trace.write_text(content)
    out = tmp_path / "out.html"
    assert main([str(trace), "-o", str(out)]) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_scripts_trace_view_entry_point(tmp_path):
    """The shell entry resolves paths from the caller's directory and exits 2 on bad input."""
    script = ROOT / "scripts" / "trace-view"
    (tmp_path / "t.jsonl").write_text((TRACES / "partial_oids.jsonl").read_text())
    done = subprocess.run(
        [str(script), "t.jsonl", "-o", "t.html"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    drawn = drawn_lines(TRACES / "partial_oids.jsonl")
    assert f"{len(drawn)} messages" in done.stdout
    assert len(load_trace(tmp_path / "t.jsonl")) > len(drawn)  # port answers are not drawn
    assert (tmp_path / "t.html").read_text().startswith("<!DOCTYPE html>")
    missing = subprocess.run(
        [str(script), "nope.jsonl"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2 and "trace-view: cannot read nope.jsonl" in missing.stderr
