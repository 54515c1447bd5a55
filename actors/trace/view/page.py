"""The HTML page around the diagrams: title, summary, legend, the "show all Ticks" toggle.

The toggle is a checkbox and CSS alone (``:checked ~``), no script: the page stays one
self-contained file that does the same with scripts disabled. When no Tick was folded there
is one diagram and no toggle.
"""

from __future__ import annotations

from actors.trace.view.layout import Layout
from actors.trace.view.svg import (
    FAILED,
    INK,
    MUTED,
    diagram,
    domain_colours,
    duration,
    heads,
    x,
)

__all__ = ["render_html"]

DASHED, DOTTED = ' stroke-dasharray="5 3"', ' stroke-dasharray="1 3"'

STYLE = """
body { margin: 0; font: 13px/1.4 system-ui, sans-serif; color: #222; background: #fff; }
header { padding: 10px 16px; border-bottom: 1px solid #ddd; }
h1 { font-size: 17px; margin: 0 0 4px; }
.summary { margin: 0 0 6px; color: #555; }
.legend { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 18px; }
.legend li { display: flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 34px; height: 10px; border: 1px solid #ccc; }
.swatch.hatch { background: repeating-linear-gradient(45deg, #f3f3f3 0 3px, #dcdcdc 3px 6px); }
.swatch.bar { width: 6px; height: 14px; background: #bbb; border-color: #333; border-radius: 2px; }
input.toggle { margin: 8px 4px 8px 16px; vertical-align: middle; }
label.toggle { vertical-align: middle; cursor: pointer; }
.view.all { display: none; }
#all-ticks:checked ~ .sheet .view.folded { display: none; }
#all-ticks:checked ~ .sheet .view.all { display: block; }
.sheet { display: inline-block; min-width: 100%; }
.heads { position: sticky; top: 0; z-index: 1; background: #fff; border-bottom: 1px solid #ddd; }
svg { display: block; font: 10px ui-monospace, monospace; }
#heads text { font: 11px ui-monospace, monospace; fill: #222; }
#heads.narrow text { font-size: 10px; }
.rule { stroke: #e4e4e4; stroke-dasharray: 2 3; }
.axis text { fill: #555; }
text.l { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
text.lane { fill: #666; font-size: 9px; }
.gaplabel { fill: #444; font-style: italic; }
.msg:hover text.l { font-weight: bold; }
.msg:hover .arrow { stroke-width: 2.5; }
"""


def _legend(colours: dict[str, str], folded: bool) -> str:
    def sample(colour: str, dash: str = "") -> str:
        return (
            f'<svg class="sample" xmlns="http://www.w3.org/2000/svg" width="34" height="10">'
            f'<line x1="0" y1="5" x2="34" y2="5" stroke="{colour}" stroke-width="2"{dash}/>'
            "</svg>"
        )

    items = [
        f'<li class="domain" data-domain="{x(d)}" data-colour="{c}">{sample(c)} {x(d)}</li>'
        for d, c in colours.items()
    ]
    items += [
        f"<li>{sample(INK)} message</li>",
        f"<li>{sample(INK, DASHED)} reply to an ask</li>",
        f"<li>{sample(MUTED)} lifecycle (ActorStarted, Ping, Shutdown)</li>",
        f'<li class="failed" data-colour="{FAILED}">{sample(FAILED)} failed request or '
        "sync (\u2717 reason @ host)</li>",
        '<li><span class="swatch hatch"></span> compressed idle gap</li>',
    ]
    if folded:
        items.append(f"<li>{sample(MUTED, DOTTED)} \u22ef n idle Ticks folded into the gap</li>")
    items.append('<li><span class="swatch bar"></span> short-lived FetchActor (#number)</li>')
    return '<ul class="legend">' + "".join(items) + "</ul>"


def _summary(plan: Layout) -> str:
    lines = plan.lines
    short = sum(1 for life in plan.lifelines.values() if life.short)
    actors = len({life.name for life in plan.lifelines.values()})
    notes = []
    if plan.folded_ticks:
        folds = sum(1 for gap in plan.gaps if gap.folded)
        notes.append(f"{plan.folded_ticks} idle Ticks folded into {folds} of them")
    if plan.skipped.get("port"):
        notes.append(f"{plan.skipped['port']} port answers (replay inputs) not drawn")
    if plan.skipped.get("before"):
        notes.append(f"{plan.skipped['before']} earlier messages not shown")
    if plan.skipped.get("after"):
        notes.append(f"{plan.skipped['after']} later messages not shown (--max-messages)")
    return (
        f"{len(lines)} messages (seq {lines[0].seq}\u2013{lines[-1].seq}), "
        f"{actors} actors ({short} FetchActor lifelines in {plan.lanes} "
        f"lane{'' if plan.lanes == 1 else 's'}), "
        f"t {lines[0].t:g} \u2192 {lines[-1].t:g} ({duration(lines[-1].t - lines[0].t)}); "
        f"1 s = {plan.px_per_sec:.3g} px, {len(plan.gaps)} compressed gaps"
        + "".join(f"; {n}" for n in notes)
    )


def render_html(plan: Layout, title: str, complete: Layout | None = None) -> str:
    """The page. ``complete`` is the same trace laid out with every Tick drawn: given (and
    when ``plan`` folded any), the page holds both diagrams and a checkbox to switch."""
    colours = domain_colours(plan)
    views = f'<div class="view folded">{diagram(plan, colours)}</div>'
    toggle = ""
    if complete is not None and plan.folded_ticks:
        views += f'<div class="view all">{diagram(complete, colours, "diagram-all")}</div>'
        toggle = (
            '<input type="checkbox" id="all-ticks" class="toggle">'
            f'<label for="all-ticks" class="toggle">show all Ticks ({plan.folded_ticks} '
            f"folded; then 1 s = {complete.px_per_sec:.3g} px)</label>\n"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>trace: {x(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<header><h1>Message trace: {x(title)}</h1><p class="summary">{x(_summary(plan))}</p>'
        f"{_legend(colours, bool(plan.folded_ticks))}</header>\n{toggle}"
        f'<div class="sheet"><div class="heads">{heads(plan, colours)}</div>\n'
        f"{views}\n</div>\n</body>\n</html>\n"
    )
