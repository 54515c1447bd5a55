"""HTML and inline SVG for a laid-out trace (:mod:`actors.trace.view.layout` places things).

The output is one file with no external asset and no script, so it can be attached to an
issue or opened from a CI artifact; the "show all Ticks" toggle is a checkbox and two CSS
rules that swap the folded diagram for the complete one. The SVG is well-formed XML (every
text escaped, control characters replaced) and carries ``data-*`` attributes (actor, seq,
type, domain, t, reason, url) so tests, and anyone scripting against a rendered trace, can
read the structure back.

Visual contract: a domain's colour on everything about that domain; replies dashed;
lifecycle traffic (ActorStarted, Ping, Shutdown) grey; a message with a non-null ``reason``
(a request or sync that failed) red with the reason and the URL's host on its label, whatever
its domain; breaks hatched, folded Ticks a dotted arrow inside their break.
"""

from __future__ import annotations

import html
import json
import re

from actors.trace.format import TraceLine
from actors.trace.view.layout import AXIS_W, Gap, Layout, Lifeline, domain_of
from actors.urls import authority

__all__ = [
    "FAILED",
    "INK",
    "LIFECYCLE",
    "MUTED",
    "PALETTE",
    "diagram",
    "domain_colours",
    "duration",
    "failure",
    "heads",
    "label",
    "x",
]

#: Colour-blind-safe (Okabe-Ito and friends); domains beyond eight reuse colours.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B", "#7F3C8D")
INK, MUTED = "#333333", "#9AA0A6"
FAILED = "#C1121F"  # a crimson no domain gets: PALETTE's nearest (vermillion) is orange
LIFECYCLE = frozenset({"ActorStarted", "Ping", "Shutdown"})
HEAD_H = 46
LABEL_MAX, FAILED_LABEL_MAX, FAILURE_MAX = 48, 80, 40
NARROW_COL, NARROW_LANE = 120.0, 30.0
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def x(text: object) -> str:
    """Escape for XML text and attributes; characters XML 1.0 forbids become U+FFFD."""
    return html.escape(_CONTROL.sub("\ufffd", str(text)), quote=True)


def domain_colours(plan: Layout) -> dict[str, str]:
    return {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(plan.domains)}


def _is_reply(line: TraceLine) -> bool:
    return line.msg.get("type") == "Reply"


def failure(line: TraceLine) -> str | None:
    """``reason @ host`` when the message reports a failure (a non-null ``reason``), else None.

    Messages that end a request or a sync (``RequestDone``, ``SlotFreed``, ``QueuedFetchDone``,
    ``SyncFinished``) carry ``url`` and ``reason``; any message with a reason is drawn failed.
    """
    reason = line.msg.get("reason")
    if reason is None:
        return None
    text = reason if isinstance(reason, str) else json.dumps(reason, ensure_ascii=False)
    host = _host(line.msg.get("url"))
    return f"{text or 'failed'} @ {host}" if host else (text or "failed")


def _host(url: object) -> str | None:
    """The URL's ``host[:port]`` (:func:`actors.urls.authority`); the text itself when it is not
    a URL with a host."""
    if not isinstance(url, str) or not url:
        return None
    return authority(url) or url


def _colour(line: TraceLine, colours: dict[str, str]) -> str:
    if failure(line) is not None:
        return FAILED
    domain = domain_of(line)
    if domain is not None:
        return colours[domain]
    request = line.msg.get("request") if _is_reply(line) else line.msg["type"]
    return MUTED if request in LIFECYCLE else INK


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def label(line: TraceLine) -> str:
    """What an arrow says: the type and identifier; a reply names its request and value; a
    failure adds ``✗ reason @ host``, which is kept whole when the rest must be shortened."""
    msg = line.msg
    if _is_reply(line):
        value = msg.get("value")
        shown = value.get("type", "{…}") if isinstance(value, dict) else json.dumps(value)
        text = f"\u21a9 {msg.get('request', '?')}: {shown}"
    else:
        subject = msg.get("identifier", msg.get("child"))
        text = msg["type"] + (f" {subject}" if isinstance(subject, str) else "")
    failed = failure(line)
    if failed is None:
        return _clip(text, LABEL_MAX)
    failed = _clip(failed, FAILURE_MAX)
    return f"{_clip(text, FAILED_LABEL_MAX - len(failed) - 3)} \u2717 {failed}"


def _marker_id(colour: str, svg_id: str) -> str:
    """Ids carry the diagram's id: a page may hold two diagrams, and a reference into the
    hidden one (``display: none``) would not render."""
    return f"{svg_id}-ah-" + colour.lstrip("#").lower()


def _markers(colours: dict[str, str], svg_id: str) -> str:
    return "".join(
        f'<marker id="{_marker_id(c, svg_id)}" markerWidth="8" markerHeight="8" refX="7.5" '
        f'refY="4" orient="auto" markerUnits="userSpaceOnUse">'
        f'<path d="M0,0 L8,4 L0,8 z" fill="{c}"/></marker>'
        for c in dict.fromkeys([INK, MUTED, FAILED, *colours.values()])
    )


def _shape(a: Lifeline, b: Lifeline, y: float, style: str) -> tuple[str, float, str]:
    """An arrow from ``a`` to ``b`` at ``y`` (a loop when they are one lifeline), and where
    its label starts and how it is anchored."""
    if a is b:
        return (
            f'<path class="arrow" d="M{a.x:.1f},{y - 5:.1f} h22 v10 h-20" fill="none" {style}/>',
            a.x + 26,
            "start",
        )
    toward = 1 if b.x > a.x else -1
    return (
        f'<line class="arrow" x1="{a.x:.1f}" y1="{y:.1f}" x2="{b.x - toward:.1f}" '
        f'y2="{y:.1f}" {style}/>',
        a.x + 6 * toward,
        "start" if toward > 0 else "end",
    )


def _message(
    line: TraceLine,
    ends: tuple[str, str],
    y: float,
    plan: Layout,
    colours: dict[str, str],
    svg_id: str,
    anchor_id: str,
) -> str:
    colour = _colour(line, colours)
    domain = domain_of(line)
    failed = failure(line) is not None
    dash = ' stroke-dasharray="5 3"' if _is_reply(line) else ""
    width = ' stroke-width="2"' if failed else ""
    style = f'stroke="{colour}"{dash}{width} marker-end="url(#{_marker_id(colour, svg_id)})"'
    shape, text_x, anchor = _shape(plan.lifelines[ends[0]], plan.lifelines[ends[1]], y, style)
    tip = (
        f"seq {line.seq} \u00b7 t={line.t:g} \u00b7 {line.sender} \u2192 {line.receiver}\n"
        + json.dumps(line.msg, ensure_ascii=False)[:2000]
    )
    data = f' data-domain="{x(domain)}"' if domain is not None else ""
    if failed:
        data += f' data-reason="{x(_scalar(line.msg["reason"]))}"'
        if isinstance(line.msg.get("url"), str):
            data += f' data-url="{x(line.msg["url"])}"'
    classes = "msg" + (" reply" if dash else "") + (" failed" if failed else "")
    return (
        f'<g{anchor_id} class="{classes}" data-seq="{line.seq}" data-t="{line.t!r}" '
        f'data-type="{x(line.msg["type"])}" data-from="{x(line.sender)}" '
        f'data-to="{x(line.receiver)}"{data}><title>{x(tip)}</title>{shape}'
        f'<text class="l" x="{text_x:.1f}" y="{y - 3:.1f}" text-anchor="{anchor}" '
        f'fill="{colour}">{x(label(line))}</text></g>'
    )


def _scalar(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _lifeline(key: str, life: Lifeline, colours: dict[str, str], lane_w: float) -> str:
    colour = colours.get(life.domain, INK) if life.domain else INK
    attrs = (
        f'data-actor="{x(life.name)}" data-key="{x(key)}" '
        f'data-kind="{"short" if life.short else "long"}"'
    )
    if life.domain:
        attrs += f' data-domain="{x(life.domain)}"'
    if not life.short:
        width = 2.5 if life.domain else 1.2
        return (
            f'<g class="lifeline" {attrs}><title>{x(life.name)}</title>'
            f'<line x1="{life.x:.1f}" y1="{life.y_from:.1f}" x2="{life.x:.1f}" '
            f'y2="{life.y_to:.1f}" stroke="{colour}" stroke-width="{width}" '
            'stroke-opacity="0.55"/></g>'
        )
    number = life.name.rsplit("-", 1)[-1]
    tx, ty = life.x + 5, life.y_from + 3
    turn = f' transform="rotate(90 {tx:.1f} {ty - 3:.1f})"' if lane_w < NARROW_LANE else ""
    return (
        f'<g class="lifeline" {attrs} data-lane="{life.lane}"><title>{x(life.name)}</title>'
        f'<rect x="{life.x - 3:.1f}" y="{life.y_from:.1f}" width="6" '
        f'height="{max(life.y_to - life.y_from, 4):.1f}" rx="2" fill="{colour}" '
        f'fill-opacity="0.35" stroke="{colour}"/><text class="lane" x="{tx:.1f}" '
        f'y="{ty:.1f}"{turn}>#{x(number)}</text></g>'
    )


def _axis(plan: Layout) -> str:
    t0 = plan.lines[0].t
    parts = [
        f'<line x1="{AXIS_W - 12}" y1="0" x2="{AXIS_W - 12}" y2="{plan.height:.1f}" '
        f'stroke="{INK}"/>'
    ]
    for y, t in plan.ticks:
        parts.append(
            f'<g class="tick" data-t="{t!r}"><title>t = {t!r}</title>'
            f'<line class="rule" x1="{AXIS_W - 16}" y1="{y:.1f}" x2="{plan.width:.1f}" '
            f'y2="{y:.1f}"/><text x="{AXIS_W - 18}" y="{y + 3:.1f}" text-anchor="end">'
            f"+{t - t0:.3f} s</text></g>"
        )
    return '<g class="axis">' + "".join(parts) + "</g>"


def duration(secs: float) -> str:
    secs = abs(secs)
    if secs < 120:
        return f"{secs:.3g} s"
    if secs < 3600:
        return f"{int(secs // 60)} min {int(secs % 60)} s"
    return f"{int(secs // 3600)} h {int(secs % 3600 // 60):02d} min"


def _gap(gap: Gap, plan: Layout, svg_id: str) -> str:
    text = (
        f"\u22ef {duration(gap.secs)} idle (compressed)"
        if gap.secs >= 0
        else f"\u21ba time went back {duration(gap.secs)} (another run?)"
    )
    attrs = f'class="gap{" fold" if gap.folded else ""}" data-secs="{gap.secs!r}"'
    if gap.folded:
        first, last = plan.lines[gap.folded.start], plan.lines[gap.folded[-1]]
        attrs += (
            f' data-ticks="{len(gap.folded)}" data-first-seq="{first.seq}" '
            f'data-last-seq="{last.seq}"'
        )
    return (
        f'<g {attrs}><rect x="{AXIS_W - 12}" y="{gap.y_top:.1f}" '
        f'width="{plan.width - AXIS_W + 12:.1f}" height="{gap.y_bottom - gap.y_top:.1f}" '
        f'fill="url(#{svg_id}-hatch)"/><text x="{AXIS_W + 6}" '
        f'y="{(gap.y_top + gap.y_bottom) / 2 + 4:.1f}" class="gaplabel">{x(text)}</text>'
        f"{_fold_marker(gap, plan, svg_id) if gap.folded else ''}</g>"
    )


def _fold_marker(gap: Gap, plan: Layout, svg_id: str) -> str:
    """The folded Ticks as one dotted arrow between their two lifelines, with their count."""
    first, last = plan.lines[gap.folded.start], plan.lines[gap.folded[-1]]
    ends = plan.ends[gap.folded.start]
    y = (gap.y_top + gap.y_bottom) / 2
    style = (
        f'stroke="{MUTED}" stroke-dasharray="1 3" marker-end="url(#{_marker_id(MUTED, svg_id)})"'
    )
    shape, text_x, anchor = _shape(plan.lifelines[ends[0]], plan.lifelines[ends[1]], y, style)
    count = len(gap.folded)
    tip = (
        f"{count} idle {first.type}s folded: seq {first.seq}\u2013{last.seq}, "
        f"t {first.t:g} \u2192 {last.t:g}, {first.sender} \u2192 {first.receiver} "
        "(tick \u201cshow all Ticks\u201d to draw each)"
    )
    return (
        f'<g class="folded"><title>{x(tip)}</title>{shape}<text class="l" '
        f'x="{text_x:.1f}" y="{y - 3:.1f}" text-anchor="{anchor}" fill="{MUTED}">'
        f"\u22ef {count} {x(first.type)}s</text></g>"
    )


def diagram(plan: Layout, colours: dict[str, str], svg_id: str = "diagram") -> str:
    """The diagram's SVG: breaks, axis, lifelines, then every drawn message on top."""
    hatch = (
        f'<pattern id="{svg_id}-hatch" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="8" height="8" fill="#f3f3f3"/>'
        '<line x1="0" y1="0" x2="0" y2="8" stroke="#dcdcdc" stroke-width="3"/></pattern>'
    )
    lifelines = "".join(
        _lifeline(key, life, colours, plan.lane_w) for key, life in plan.lifelines.items()
    )
    seen: set[int] = set()  # ``#seq-N`` links to a message; only the first run's N if appended
    messages = []
    for i, (line, ends, y) in enumerate(zip(plan.lines, plan.ends, plan.ys, strict=False)):
        if i in plan.hidden:
            continue
        anchor_id = "" if line.seq in seen or svg_id != "diagram" else f' id="seq-{line.seq}"'
        seen.add(line.seq)
        messages.append(_message(line, ends, y, plan, colours, svg_id, anchor_id))
    defs = _markers(colours, svg_id) + hatch
    gaps = "".join(_gap(gap, plan, svg_id) for gap in plan.gaps)
    return (
        f'<svg id="{svg_id}" xmlns="http://www.w3.org/2000/svg" width="{plan.width:.0f}" '
        f'height="{plan.height:.0f}" viewBox="0 0 {plan.width:.0f} {plan.height:.0f}">'
        f"<defs>{defs}</defs>{gaps}{_axis(plan)}"
        f'<g class="lifelines">{lifelines}</g><g class="messages">{"".join(messages)}</g></svg>'
    )


def heads(plan: Layout, colours: dict[str, str]) -> str:
    """The sticky header: a box per long-lived actor, one box over all FetchActor lanes."""
    narrow = plan.col_w < NARROW_COL
    char_px, box_w = (6.0 if narrow else 6.6), min(144.0, plan.col_w - 6)
    parts = [f'<text x="{AXIS_W - 18}" y="{HEAD_H / 2 + 4}" text-anchor="end">time</text>']
    for life in plan.lifelines.values():
        if life.short:
            continue
        colour = colours.get(life.domain, INK) if life.domain else INK
        name, _, rest = life.name.partition("[")
        lines = [
            _clip(part, int((box_w - 6) / char_px))
            for part in [name] + ([f"[{rest}"] if rest else [])
        ]
        tspans = "".join(
            f'<tspan x="{life.x:.1f}" dy="{0 if i == 0 else 13}">{x(part)}</tspan>'
            for i, part in enumerate(lines)
        )
        top = HEAD_H / 2 - (2 if len(lines) > 1 else -4)
        parts.append(
            f'<g class="actor-head" data-actor="{x(life.name)}"><title>{x(life.name)}</title>'
            f'<rect x="{life.x - box_w / 2:.1f}" y="4" width="{box_w:.1f}" '
            f'height="{HEAD_H - 8}" rx="4" fill="{colour}" fill-opacity="0.10" '
            f'stroke="{colour}"/><text x="{life.x:.1f}" y="{top:.1f}" text-anchor="middle">'
            f"{tspans}</text></g>"
        )
    if plan.lanes:
        start = min(life.x for life in plan.lifelines.values() if life.short) - plan.lane_w / 2
        parts.append(
            f'<g class="actor-head lanes"><rect x="{start + 2:.1f}" y="4" '
            f'width="{plan.lanes * plan.lane_w - 4:.1f}" height="{HEAD_H - 8}" rx="4" '
            f'fill="none" stroke="{MUTED}" stroke-dasharray="4 3"/><text x="{start + 8:.1f}" '
            f'y="{HEAD_H / 2 - 2}">FetchActors<tspan x="{start + 8:.1f}" dy="13">'
            f"{plan.lanes} lane{'s' if plan.lanes > 1 else ''}</tspan></text></g>"
        )
    css_class = ' class="narrow"' if narrow else ""
    return (
        f'<svg id="heads"{css_class} xmlns="http://www.w3.org/2000/svg" '
        f'width="{plan.width:.0f}" height="{HEAD_H}">{"".join(parts)}</svg>'
    )
