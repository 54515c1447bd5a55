"""Failures on arrows in *recorded* traces (S18.2, S13.3): the messages that end a request or
a sync carry the URL and the reason, so the viewer draws a failed request red with
``✗ reason @ host`` — here from traces the actor system wrote, not hand-made ones — while idle
Ticks stay folded.

* ``why_held.jsonl`` (scripts/record-traces): one identifier, a 404, a server without the
  commit and a ``git://`` URL; two attempts fail, the third releases.
* ``e2e_backoff.jsonl`` (a real relay, ``test_faults``): three HTTP 500s, then a release.
"""

from __future__ import annotations

import re

from tests.trace.svgread import (
    TRACES,
    arrows,
    check_diagram,
    drawn_lines,
    folds,
    legend_colours,
    render,
    svg,
)

ENDING = {"RequestDone", "SlotFreed", "QueuedFetchDone", "SyncFinished"}


def failed_colour(page: str) -> str:
    (colour,) = re.findall(r'<li class="failed" data-colour="([^"]+)">', page)
    return colour


def test_s18_2_why_held_shows_each_urls_reason_on_its_arrow_with_ticks_folded(tmp_path):
    trace = TRACES / "why_held.jsonl"
    page = render(tmp_path, trace)
    _, drawn, root = check_diagram(page, trace, svg_id="diagram")
    red = failed_colour(page)
    ending = [a for a in drawn if a["type"] in ENDING]
    failures = [(a["type"], a["label"].split(" \u2717 ")[1]) for a in ending if "reason" in a]
    assert failures == [
        ("RequestDone", "not_found @ gone.example"),
        ("RequestDone", "missing_objects @ lacking.example"),
        ("RequestDone", "policy @ old.example"),
        ("SyncFinished", "policy @ old.example"),
        ("RequestDone", "not_found @ gone.example"),
        ("RequestDone", "missing_objects @ lacking.example"),
        ("SyncFinished", "missing_objects @ lacking.example"),  # git:// is not asked again
        ("RequestDone", "not_found @ gone.example"),
    ]
    for arrow in ending:
        assert ("failed" in arrow["classes"]) == ("reason" in arrow)
        assert (arrow["stroke"] == red) == ("reason" in arrow)
    released = [a for a in ending if "reason" not in a]
    # The request that brought everything ends with its TransferEnded, no RequestDone (P4):
    # drawn in its domain's colour, not red.
    assert [a["type"] for a in released] == ["SyncFinished"]
    last_end = [a for a in drawn if a["type"] == "TransferEnded"][-1]
    assert last_end["stroke"] == legend_colours(page)["lacking.example"]

    found = folds(root)  # the idle seconds of the 20 s and 40 s backoffs are folded
    ticks = [line for line in drawn_lines(trace) if line["msg"]["type"] == "Tick"]
    assert sum(f["ticks"] for f in found) > len(ticks) / 2  # most of them, each run's inside
    assert sum(a["type"] == "Tick" for a in drawn) + sum(f["ticks"] for f in found) == len(ticks)
    assert max(f["secs"] for f in found) >= 30


def test_s18_2_a_real_relays_http_500s_are_red_on_their_requests_and_syncs(tmp_path):
    trace = TRACES / "e2e_backoff.jsonl"
    page = render(tmp_path, trace)
    _, drawn, root = check_diagram(page, trace, svg_id="diagram")
    red = failed_colour(page)
    done = [a for a in drawn if a["type"] == "RequestDone"]
    finished = [a for a in drawn if a["type"] == "SyncFinished"]
    # The fourth request brought everything: it ends with its TransferEnded (P4), not red.
    assert [a.get("reason") for a in done] == ["http_error"] * 3
    [success] = [a for a in drawn if a["type"] == "TransferEnded"]
    assert [a.get("reason") for a in finished] == ["http_error"] * 3 + [None]
    for arrow in done[:3] + finished[:3]:
        assert arrow["stroke"] == red
        assert re.search(r" \u2717 http_error @ 127\.0\.0\.2:\d+$", arrow["label"]), arrow["label"]
        assert arrow["url"].startswith("http://127.0.0.2:")
    assert success["stroke"] != red and finished[3]["stroke"] != red
    assert svg(page, "diagram-all") is not None  # the complete view is there too
    assert len(arrows(root)) == len(drawn)
