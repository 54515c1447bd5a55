"""Failures visible on arrows (S13.3 traces): a message that ends a request or a sync with a
non-null ``reason`` is drawn in the failed colour with the reason and the URL's host on its
label; with ``reason`` null or absent it is drawn as before."""

from __future__ import annotations

import re

from actors.trace.view.svg import INK, MUTED, PALETTE
from tests.trace.svgread import (
    SVG,
    arrows,
    check_diagram,
    legend_colours,
    render,
    svg,
    write_trace,
)

URL = "https://git.example:8443/alice/repo.git"
OTHER = "https://user:secret@other.example/r.git"
FA, GIT, OTHER_T = "FetchActor-1", "DomainThrottle[git.example]", "DomainThrottle[other.example]"


def failing_trace(tmp_path, identifier="repo"):
    return write_trace(
        tmp_path / "failures.jsonl",
        [
            (0.0, "system", FA, {"type": "ActorStarted"}),
            (0.0, "Scheduler", FA, {"type": "SyncIdentifier", "identifier": identifier}),
            (0.1, FA, GIT, {"type": "RequestDone", "url": URL, "reason": "timeout"}),
            (0.1, FA, GIT, {"type": "SlotFreed", "url": URL, "reason": None}),
            (
                0.2,
                FA,
                OTHER_T,
                {
                    "type": "QueuedFetchDone",
                    "identifier": identifier,
                    "url": OTHER,
                    "reason": "not_found",
                },
            ),
            (
                0.3,
                FA,
                "Scheduler",
                {
                    "type": "SyncFinished",
                    "identifier": identifier,
                    "complete": False,
                    "reason": "missing_objects",
                    "url": OTHER,
                },
            ),
            (0.3, FA, GIT, {"type": "RequestDone"}),
            (
                0.4,
                FA,
                "Scheduler",
                {"type": "SyncFinished", "identifier": "done", "complete": True, "reason": None},
            ),
        ],
    )


def failed_colour(page: str) -> str:
    (colour,) = re.findall(r'<li class="failed" data-colour="([^"]+)">', page)
    return colour


def test_s13_3_a_reason_is_shown_on_a_red_arrow_with_the_urls_host(tmp_path):
    trace = failing_trace(tmp_path)
    page = render(tmp_path, trace)
    _, drawn, root = check_diagram(page, trace)
    red, domains = failed_colour(page), legend_colours(page)
    assert red not in {*PALETTE, INK, MUTED, *domains.values()}
    by_seq = {int(a["seq"]): a for a in drawn}
    expected = {
        3: "timeout @ git.example:8443",
        5: "not_found @ other.example",
        6: "missing_objects @ other.example",
    }
    for seq, failure in expected.items():
        arrow = by_seq[seq]
        assert arrow["stroke"] == red and "failed" in arrow["classes"]
        assert arrow["label"].endswith(f" \u2717 {failure}")
        assert arrow["reason"] == failure.split(" @ ")[0]
        assert "secret" not in arrow["label"] and "alice" not in arrow["label"]
    assert by_seq[6]["label"].startswith("SyncFinished repo")
    assert by_seq[3]["url"] == URL
    # the arrowhead is red too
    heads = {m.get("id"): m.find(f"{SVG}path").get("fill") for m in root.iter(f"{SVG}marker")}
    for g in root.iter(f"{SVG}g"):
        if "failed" in g.get("class", "").split():
            marker = g.find(f"{SVG}line").get("marker-end")
            assert heads[marker[5:-1]] == red


def test_s13_3_reason_null_or_absent_is_drawn_as_before(tmp_path):
    trace = failing_trace(tmp_path)
    page = render(tmp_path, trace)
    drawn = {int(a["seq"]): a for a in arrows(svg(page, "diagram"))}
    colours = legend_colours(page)
    for seq in (4, 7):  # SlotFreed reason null, RequestDone without fields: the domain's colour
        assert drawn[seq]["stroke"] == colours["git.example"]
    assert drawn[8]["stroke"] == INK and drawn[8]["label"] == "SyncFinished done"
    for seq in (4, 7, 8):
        assert "failed" not in drawn[seq]["classes"] and "\u2717" not in drawn[seq]["label"]
        assert "reason" not in drawn[seq]


def test_a_long_label_is_shortened_before_the_reason(tmp_path):
    page = render(tmp_path, failing_trace(tmp_path, identifier="x" * 120))
    label = {int(a["seq"]): a for a in arrows(svg(page, "diagram"))}[6]["label"]
    assert label.startswith("SyncFinished xxx") and "\u2026" in label
    assert label.endswith(" \u2717 missing_objects @ other.example")


def test_a_hostile_reason_and_url_stay_text(tmp_path):
    reason, url = "<script>x</script>&\x02", "http://[::1"  # not a URL with a host
    trace = write_trace(
        tmp_path / "hostile.jsonl",
        [
            (
                1.0,
                FA,
                "Scheduler",
                {
                    "type": "SyncFinished",
                    "identifier": "r",
                    "complete": False,
                    "reason": reason,
                    "url": url,
                },
            )
        ],
    )
    page = render(tmp_path, trace)
    assert "<script" not in page
    (arrow,) = arrows(svg(page, "diagram"))
    assert arrow["label"] == "SyncFinished r \u2717 <script>x</script>&\ufffd @ http://[::1"
    assert arrow["stroke"] == failed_colour(page)
