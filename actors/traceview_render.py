"""HTML and inline SVG for :mod:`actors.traceview` (the layout is computed there).

The output is one file with no external asset, so it can be attached to an issue or opened
from a CI artifact. The SVG is well-formed XML (every text escaped, control characters
replaced) and carries ``data-*`` attributes (actor, seq, type, domain, t) so tests, and anyone
scripting against a rendered trace, can read the structure back.
"""

from __future__ import annotations

import html
import json
import re

from actors.traceview import AXIS_W, Layout, Lifeline, TraceLine, domain_of

__all__ = ["LIFECYCLE", "PALETTE", "domain_colours", "render_html"]

#: Colour-blind-safe (Okabe-Ito and friends); domains beyond eight reuse colours.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B",
           "#7F3C8D")
INK, MUTED = "#333333", "#9AA0A6"
LIFECYCLE = frozenset({"ActorStarted", "Ping", "Shutdown"})
HEAD_H = 46
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def x(text: object) -> str:
    """Escape for XML text and attributes; characters XML 1.0 forbids become U+FFFD."""
    return html.escape(_CONTROL.sub("\ufffd", str(text)), quote=True)


def domain_colours(plan: Layout) -> dict[str, str]:
    return {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(plan.domains)}


def _is_reply(line: TraceLine) -> bool:
    return line.msg.get("type") == "Reply"


def _colour(line: TraceLine, colours: dict[str, str]) -> str:
    domain = domain_of(line)
    if domain is not None:
        return colours[domain]
    request = line.msg.get("request") if _is_reply(line) else line.msg["type"]
    return MUTED if request in LIFECYCLE else INK


def label(line: TraceLine) -> str:
    """What an arrow says: the type and identifier; a reply names its request and value."""
    msg = line.msg
    if _is_reply(line):
        value = msg.get("value")
        shown = value.get("type", "{…}") if isinstance(value, dict) else json.dumps(value)
        text = f"\u21a9 {msg.get('request', '?')}: {shown}"
    else:
        subject = msg.get("identifier", msg.get("child"))
        text = msg["type"] + (f" {subject}" if isinstance(subject, str) else "")
    return text if len(text) <= 48 else text[:47] + "\u2026"


def _marker_id(colour: str) -> str:
    return "ah-" + colour.lstrip("#").lower()


def _markers(colours: dict[str, str]) -> str:
    return "".join(
        f'<marker id="{_marker_id(c)}" markerWidth="8" markerHeight="8" refX="7.5" refY="4" '
        f'orient="auto" markerUnits="userSpaceOnUse"><path d="M0,0 L8,4 L0,8 z" fill="{c}"/>'
        "</marker>"
        for c in dict.fromkeys([INK, MUTED, *colours.values()])
    )


def _message(line: TraceLine, ends: tuple[str, str], y: float, plan: Layout,
             colours: dict[str, str], anchor_id: str) -> str:
    a, b = plan.lifelines[ends[0]], plan.lifelines[ends[1]]
    colour = _colour(line, colours)
    domain = domain_of(line)
    dash = ' stroke-dasharray="5 3"' if _is_reply(line) else ""
    marker = f' marker-end="url(#{_marker_id(colour)})"'
    if a is b:
        shape = (f'<path class="arrow" d="M{a.x:.1f},{y - 5:.1f} h22 v10 h-20" fill="none" '
                 f'stroke="{colour}"{dash}{marker}/>')
        text_x, anchor = a.x + 26, "start"
    else:
        toward = 1 if b.x > a.x else -1
        shape = (f'<line class="arrow" x1="{a.x:.1f}" y1="{y:.1f}" x2="{b.x - toward:.1f}" '
                 f'y2="{y:.1f}" stroke="{colour}"{dash}{marker}/>')
        text_x, anchor = a.x + 6 * toward, "start" if toward > 0 else "end"
    tip = (f"seq {line.seq} \u00b7 t={line.t:g} \u00b7 {line.sender} \u2192 {line.receiver}\n"
           + json.dumps(line.msg, ensure_ascii=False)[:2000])
    data_domain = f' data-domain="{x(domain)}"' if domain is not None else ""
    return (
        f'<g{anchor_id} class="msg{" reply" if dash else ""}" data-seq="{line.seq}" data-t="{line.t!r}" '
        f'data-type="{x(line.msg["type"])}" data-from="{x(line.sender)}" '
        f'data-to="{x(line.receiver)}"{data_domain}><title>{x(tip)}</title>{shape}'
        f'<text class="l" x="{text_x:.1f}" y="{y - 3:.1f}" text-anchor="{anchor}" '
        f'fill="{colour}">{x(label(line))}</text></g>'
    )


def _lifeline(key: str, life: Lifeline, colours: dict[str, str]) -> str:
    colour = colours.get(life.domain, INK) if life.domain else INK
    attrs = (f'data-actor="{x(life.name)}" data-key="{x(key)}" '
             f'data-kind="{"short" if life.short else "long"}"')
    if life.domain:
        attrs += f' data-domain="{x(life.domain)}"'
    if not life.short:
        width = 2.5 if life.domain else 1.2
        return (f'<g class="lifeline" {attrs}><title>{x(life.name)}</title>'
                f'<line x1="{life.x:.1f}" y1="{life.y_from:.1f}" x2="{life.x:.1f}" '
                f'y2="{life.y_to:.1f}" stroke="{colour}" stroke-width="{width}" '
                'stroke-opacity="0.55"/></g>')
    number = life.name.rsplit("-", 1)[-1]
    return (f'<g class="lifeline" {attrs} data-lane="{life.lane}"><title>{x(life.name)}</title>'
            f'<rect x="{life.x - 3:.1f}" y="{life.y_from:.1f}" width="6" '
            f'height="{max(life.y_to - life.y_from, 4):.1f}" rx="2" fill="{colour}" '
            f'fill-opacity="0.35" stroke="{colour}"/><text class="lane" x="{life.x + 5:.1f}" '
            f'y="{life.y_from + 3:.1f}">#{x(number)}</text></g>')


def _axis(plan: Layout) -> str:
    t0 = plan.lines[0].t
    parts = [f'<line x1="{AXIS_W - 12}" y1="0" x2="{AXIS_W - 12}" y2="{plan.height:.1f}" '
             f'stroke="{INK}"/>']
    for y, t in plan.ticks:
        parts.append(
            f'<g class="tick" data-t="{t!r}"><title>t = {t!r}</title>'
            f'<line class="rule" x1="{AXIS_W - 16}" y1="{y:.1f}" x2="{plan.width:.1f}" '
            f'y2="{y:.1f}"/><text x="{AXIS_W - 18}" y="{y + 3:.1f}" text-anchor="end">'
            f"+{t - t0:.3f} s</text></g>")
    return '<g class="axis">' + "".join(parts) + "</g>"


def duration(secs: float) -> str:
    secs = abs(secs)
    if secs < 120:
        return f"{secs:.3g} s"
    if secs < 3600:
        return f"{int(secs // 60)} min {int(secs % 60)} s"
    return f"{int(secs // 3600)} h {int(secs % 3600 // 60):02d} min"


def _gaps(plan: Layout) -> str:
    parts = []
    for gap in plan.gaps:
        text = (f"\u22ef {duration(gap.secs)} idle (compressed)" if gap.secs >= 0
                else f"\u21ba time went back {duration(gap.secs)} (another run?)")
        parts.append(
            f'<g class="gap" data-secs="{gap.secs!r}"><rect x="{AXIS_W - 12}" y="{gap.y_top:.1f}" '
            f'width="{plan.width - AXIS_W + 12:.1f}" height="{gap.y_bottom - gap.y_top:.1f}" '
            f'fill="url(#hatch)"/><text x="{AXIS_W + 6}" y="{(gap.y_top + gap.y_bottom) / 2 + 4:.1f}"'
            f' class="gaplabel">{x(text)}</text></g>')
    return "".join(parts)


def _diagram(plan: Layout, colours: dict[str, str]) -> str:
    hatch = ('<pattern id="hatch" width="8" height="8" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="8" height="8" fill="#f3f3f3"/>'
             '<line x1="0" y1="0" x2="0" y2="8" stroke="#dcdcdc" stroke-width="3"/></pattern>')
    lifelines = "".join(_lifeline(key, life, colours) for key, life in plan.lifelines.items())
    seen: set[int] = set()  # ``#seq-N`` links to a message; only the first run's N if appended
    messages = []
    for line, ends, y in zip(plan.lines, plan.ends, plan.ys):
        anchor_id = "" if line.seq in seen else f' id="seq-{line.seq}"'
        seen.add(line.seq)
        messages.append(_message(line, ends, y, plan, colours, anchor_id))
    return (
        f'<svg id="diagram" xmlns="http://www.w3.org/2000/svg" width="{plan.width:.0f}" '
        f'height="{plan.height:.0f}" viewBox="0 0 {plan.width:.0f} {plan.height:.0f}">'
        f"<defs>{_markers(colours)}{hatch}</defs>{_gaps(plan)}{_axis(plan)}"
        f'<g class="lifelines">{lifelines}</g><g class="messages">{"".join(messages)}</g></svg>'
    )


def _head(plan: Layout, colours: dict[str, str]) -> str:
    parts = [f'<text x="{AXIS_W - 18}" y="{HEAD_H / 2 + 4}" text-anchor="end">time</text>']
    for life in plan.lifelines.values():
        if life.short:
            continue
        colour = colours.get(life.domain, INK) if life.domain else INK
        name, _, rest = life.name.partition("[")
        lines = [name] + ([f"[{rest}"] if rest else [])
        tspans = "".join(f'<tspan x="{life.x:.1f}" dy="{0 if i == 0 else 13}">{x(part)}</tspan>'
                         for i, part in enumerate(lines))
        top = HEAD_H / 2 - (2 if len(lines) > 1 else -4)
        parts.append(
            f'<g class="actor-head" data-actor="{x(life.name)}"><rect x="{life.x - 72:.1f}" y="4" '
            f'width="144" height="{HEAD_H - 8}" rx="4" fill="{colour}" fill-opacity="0.10" '
            f'stroke="{colour}"/><text x="{life.x:.1f}" y="{top:.1f}" text-anchor="middle">'
            f"{tspans}</text></g>")
    if plan.lanes:
        start = min(life.x for life in plan.lifelines.values() if life.short) - plan.lane_w / 2
        parts.append(
            f'<g class="actor-head lanes"><rect x="{start + 2:.1f}" y="4" '
            f'width="{plan.lanes * plan.lane_w - 4:.1f}" height="{HEAD_H - 8}" rx="4" '
            f'fill="none" stroke="{MUTED}" stroke-dasharray="4 3"/><text x="{start + 8:.1f}" '
            f'y="{HEAD_H / 2 - 2}">FetchActors<tspan x="{start + 8:.1f}" dy="13">'
            f'{plan.lanes} lane{"s" if plan.lanes > 1 else ""}</tspan></text></g>')
    return (f'<svg id="heads" xmlns="http://www.w3.org/2000/svg" width="{plan.width:.0f}" '
            f'height="{HEAD_H}">{"".join(parts)}</svg>')


def _legend(colours: dict[str, str]) -> str:
    def sample(colour: str, dash: str = "") -> str:
        return (f'<svg class="sample" xmlns="http://www.w3.org/2000/svg" width="34" height="10">'
                f'<line x1="0" y1="5" x2="34" y2="5" stroke="{colour}" stroke-width="2"{dash}/></svg>')

    items = [f'<li class="domain" data-domain="{x(d)}" data-colour="{c}">{sample(c)} {x(d)}</li>'
             for d, c in colours.items()]
    items += [f"<li>{sample(INK)} message</li>",
              f'<li>{sample(INK, " stroke-dasharray=" + chr(34) + "5 3" + chr(34))} reply to an ask</li>',
              f"<li>{sample(MUTED)} lifecycle (ActorStarted, Ping, Shutdown)</li>",
              '<li><span class="swatch hatch"></span> compressed idle gap</li>',
              '<li><span class="swatch bar"></span> short-lived FetchActor (#number)</li>']
    return '<ul class="legend">' + "".join(items) + "</ul>"


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
.sheet { display: inline-block; min-width: 100%; }
.heads { position: sticky; top: 0; z-index: 1; background: #fff; border-bottom: 1px solid #ddd; }
svg { display: block; font: 10px ui-monospace, monospace; }
#heads text { font: 11px ui-monospace, monospace; fill: #222; }
.rule { stroke: #e4e4e4; stroke-dasharray: 2 3; }
.axis text { fill: #555; }
text.l { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
text.lane { fill: #666; font-size: 9px; }
.gaplabel { fill: #444; font-style: italic; }
.msg:hover text.l { font-weight: bold; }
.msg:hover .arrow { stroke-width: 2.5; }
"""


def render_html(plan: Layout, title: str) -> str:
    colours = domain_colours(plan)
    lines = plan.lines
    short = sum(1 for life in plan.lifelines.values() if life.short)
    actors = len({life.name for life in plan.lifelines.values()})
    span = lines[-1].t - lines[0].t
    notes = []
    if plan.skipped.get("before"):
        notes.append(f"{plan.skipped['before']} earlier messages not shown")
    if plan.skipped.get("after"):
        notes.append(f"{plan.skipped['after']} later messages not shown (--max-messages)")
    summary = (f"{len(lines)} messages (seq {lines[0].seq}\u2013{lines[-1].seq}), "
               f"{actors} actors ({short} FetchActor lifelines in {plan.lanes} lanes), "
               f"t {lines[0].t:g} \u2192 {lines[-1].t:g} ({duration(span)}); "
               f"1 s = {plan.px_per_sec:.3g} px, {len(plan.gaps)} compressed gaps"
               + "".join(f"; {n}" for n in notes))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>trace: {x(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<header><h1>Message trace: {x(title)}</h1><p class="summary">{x(summary)}</p>'
        f"{_legend(colours)}</header>\n"
        f'<div class="sheet"><div class="heads">{_head(plan, colours)}</div>\n'
        f"{_diagram(plan, colours)}\n</div>\n</body>\n</html>\n"
    )
