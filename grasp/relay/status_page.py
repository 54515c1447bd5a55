"""The ``/status`` page: one self-contained HTML document, rendered twice by design.

The server renders every section into the HTML, so the page shows real numbers without
JavaScript (and to a screenshot or ``curl``). The inline script then polls ``/status.json`` and
re-renders the same sections in the browser. The two renderers are kept *identical in output*:
the Python functions below and the script's ``render`` produce the same markup for the same
snapshot (tests/relay/test_status.py runs the script under Node and compares), which is why
number formatting mirrors JavaScript's ``Number.prototype.toFixed`` exactly.

Everything that came from the outside (identifiers, domains, URLs, error texts) is escaped on
both sides. The page loads nothing from anywhere: CSS and script are inline, and the response's
Content-Security-Policy allows exactly these two blocks (by hash) and fetches from its own
origin, so even an escaping mistake could not run injected script.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["CONTENT_SECURITY_POLICY", "SECTIONS", "fixed", "render_page", "render_sections"]

#: Section ids, in page order, with their headings.
SECTIONS = (
    ("sync", "Sync queue"),
    ("domains", "Domains"),
    ("purgatory", "Purgatory"),
    ("releases", "Recent releases"),
    ("sources", "Sync sources"),
)
KIND_LABELS = {"30617": "30617 announcements", "30618": "30618 states", "1618": "1618 PRs",
               "1619": "1619 PR updates", "placeholder": "PR placeholders"}
SOURCE_KEYS = ("url", "state", "caught_up", "connected_since", "last_event_at", "events_received",
               "events_accepted", "events_duplicate", "events_rejected", "events_invalid",
               "reconnects", "next_attempt_at", "last_error")
DASH = "\u2014"

# The page's only CSS and script; both are inlined, and the CSP names them by hash.
STYLE = """
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #5b6570; --line: #d6dbe0;
        --ok: #1a7f37; --bad: #c0362c; --bg: #ffffff; --band: #f4f6f8; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e8eb; --muted: #9aa4ae; --line: #3a424b; --bg: #15181c; --band: #1d2227; }
}
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 12px 20px; border-bottom: 1px solid var(--line); background: var(--band); }
h1 { margin: 0; font-size: 20px; }
h2 { margin: 0 0 8px; font-size: 16px; }
h3 { margin: 10px 0 4px; font-size: 13px; color: var(--muted); font-weight: 600; }
.meta { margin: 2px 0 0; color: var(--muted); }
.live { margin-left: 8px; padding: 0 6px; border-radius: 8px; border: 1px solid var(--line); }
.live.ok { color: var(--ok); border-color: var(--ok); }
.live.stale { color: var(--bad); border-color: var(--bad); }
main { display: grid; gap: 16px; padding: 16px 20px;
       grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); }
section { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px 3px 0; border-bottom: 1px solid var(--line);
         white-space: nowrap; vertical-align: middle; }
th { color: var(--muted); font-weight: 600; }
td { font-variant-numeric: tabular-nums; }
meter { width: 70px; vertical-align: middle; }
.figures { margin: 0; }
.figure { margin-right: 18px; }
.figure b { font-size: 26px; margin-right: 4px; }
.empty { color: var(--muted); margin: 4px 0; }
.error { color: var(--bad); margin: 4px 0; }
code { font-size: 12px; }
#releases, #sources { grid-column: 1 / -1; }
"""

SCRIPT = r"""
(function (root) {
  "use strict";
  var KIND_LABELS = {"30617": "30617 announcements", "30618": "30618 states", "1618": "1618 PRs",
                     "1619": "1619 PR updates", "placeholder": "PR placeholders"};
  var KIND_ORDER = ["30617", "30618", "1618", "1619", "placeholder"];
  var SOURCE_KEYS = ["url", "state", "caught_up", "connected_since", "last_event_at",
                     "events_received", "events_accepted", "events_duplicate", "events_rejected",
                     "events_invalid", "reconnects", "next_attempt_at", "last_error"];
  var DASH = "\u2014";
  var ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#x27;"};

  function esc(v) { return String(v).replace(/[&<>"']/g, function (c) { return ESCAPES[c]; }); }
  function fixed(x, digits) { return (x === 0 ? 0 : x).toFixed(digits); }
  function duration(d) {
    if (d < 120) return fixed(d, 1) + " s";
    if (d < 7200) return Math.floor(d / 60) + " min";
    var m = Math.floor(d % 3600 / 60);
    return Math.floor(d / 3600) + " h " + (m < 10 ? "0" : "") + m + " min";
  }
  function secs(x) { return x === null || x === undefined ? DASH : duration(x); }
  function valueText(v) {
    if (v === null || v === undefined) return DASH;
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : fixed(v, 2);
    return String(v);
  }
  function ago(t, now) {
    if (typeof t !== "number") return valueText(t);
    return t > now ? "in " + duration(t - now) : duration(now - t) + " ago";
  }
  function clockText(t) { return new Date(t * 1000).toISOString().slice(11, 19) + " UTC"; }
  function kindLabel(k) { return own(KIND_LABELS, k) ? KIND_LABELS[k] : k; }
  function own(obj, key) { return Object.prototype.hasOwnProperty.call(obj, key); }

  function table(headers, rows, empty) {
    if (!rows.length) return '<p class="empty">' + esc(empty) + "</p>";
    var head = headers.map(function (h) { return "<th>" + esc(h) + "</th>"; }).join("");
    var body = rows.map(function (row) {
      return "<tr>" + row.map(function (c) { return "<td>" + c + "</td>"; }).join("") + "</tr>";
    }).join("");
    return "<table><thead><tr>" + head + "</tr></thead><tbody>" + body + "</tbody></table>";
  }
  function error(part) {
    return part.error ? '<p class="error">unavailable: ' + esc(part.error) + "</p>" : "";
  }
  function meter(used, limit) {
    return esc(used) + " / " + esc(limit) + ' <meter min="0" max="' + esc(limit || 1) +
      '" value="' + esc(used) + '"></meter>';
  }
  function ordered(keys, first) {
    var rest = keys.filter(function (k) { return first.indexOf(k) < 0; }).sort();
    return first.filter(function (k) { return keys.indexOf(k) >= 0; }).concat(rest);
  }

  function sync(s) {
    var q = s.sync;
    if (q.error) return error(q);
    var rows = q.next_attempts.map(function (a) { return [esc(a.identifier), esc(secs(a.in_secs))]; });
    return '<p class="figures"><span class="figure"><b>' + esc(q.queue_size) + "</b> queued" +
      '</span><span class="figure"><b>' + esc(q.in_progress) + "</b> syncing</span></p>" +
      "<h3>Next attempts</h3>" + table(["identifier", "in"], rows, "none scheduled");
  }
  function domains(s) {
    var q = s.sync;
    if (q.error) return error(q);
    var rows = q.domains.map(function (d) {
      return [esc(d.domain), meter(d.in_flight, d.max_concurrent), esc(d.queued),
              meter(d.window_used, d.max_per_window)];
    });
    return table(["domain", "in flight", "queued", "rate window"], rows, "no remote domain yet");
  }
  function releases(s) {
    var rows = s.releases.map(function (r) {
      var event = '<code title="' + esc(r.event_id) + '">' + esc(r.event_id.slice(0, 12)) + "</code>";
      return [esc(ago(r.released_at, s.generated_at)), esc(kindLabel(String(r.kind))),
              esc(r.identifier), event, esc(secs(r.latency_secs))];
    });
    return table(["released", "kind", "identifier", "event", "held for"], rows,
                 "nothing released yet");
  }
  function sources(s) {
    var part = s.sync_sources, keys = [];
    if (part.error) return error(part);
    part.connections.forEach(function (c) {
      Object.keys(c).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
    });
    keys = ordered(keys, SOURCE_KEYS);
    var rows = part.connections.map(function (c) {
      return keys.map(function (k) {
        var v = own(c, k) ? c[k] : null;
        var timed = /_at$|_since$/.test(k);
        return esc(timed ? ago(v, s.generated_at) : valueText(v));
      });
    });
    var headers = keys.map(function (k) { return k.replace(/_/g, " "); });
    return table(headers, rows, "no sync sources configured");
  }
  function purgatory(s) {
    var part = s.purgatory, counts = part.counts;
    if (part.error) return error(part);
    var rows = ordered(Object.keys(counts), KIND_ORDER).map(function (k) {
      return [esc(kindLabel(k)), esc(counts[k])];
    });
    if (rows.length) rows.push(["<b>total</b>", "<b>" + esc(part.total) + "</b>"]);
    return table(["kind", "held"], rows, "purgatory is empty");
  }

  function render(s) {
    return {sync: sync(s), domains: domains(s), releases: releases(s), sources: sources(s),
            purgatory: purgatory(s)};
  }
  root.GraspStatus = {render: render, clockText: clockText};
  if (!root.document) return;

  var doc = root.document, body = doc.body;
  var url = body.getAttribute("data-json-url");
  var every = Number(body.getAttribute("data-refresh-ms")) || 2000;
  var live = doc.getElementById("live");
  function show(text, state) { live.textContent = text; live.className = "live " + state; }
  function apply(s) {
    var parts = render(s);
    Object.keys(parts).forEach(function (name) {
      var el = doc.getElementById(name + "-body");
      if (el) el.innerHTML = parts[name];
    });
    doc.getElementById("updated").textContent = clockText(s.generated_at);
  }
  function poll() {
    fetch(url, {cache: "no-store", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) { apply(s); show("live", "ok"); })
      .catch(function (e) { show("stale: " + e.message, "stale"); })
      .then(function () { root.setTimeout(poll, every); });
  }
  poll();
})(typeof window !== "undefined" ? window : globalThis);
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_csp_hash(SCRIPT)}; style-src {_csp_hash(STYLE)}; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


# -- formatting (mirrored in status.js) ---------------------------------------------------------

def fixed(x: float, digits: int) -> str:
    """``x.toFixed(digits)`` as JavaScript computes it: ties round away from zero on the exact
    binary value (Python's ``format`` would round half to even and disagree on 0.25)."""
    if x == 0:
        x = 0.0  # JavaScript prints -0 as "0.0"
    step = Decimal(1).scaleb(-digits)
    return format(Decimal(x).quantize(step, rounding=ROUND_HALF_UP), "f")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def duration(d: float) -> str:
    """Seconds for people: "12.5 s", "42 min", "3 h 07 min"."""
    if d < 120:
        return fixed(d, 1) + " s"
    if d < 7200:
        return f"{int(d // 60)} min"
    return f"{int(d // 3600)} h {int(d % 3600 // 60):02d} min"


def secs(x: float | None) -> str:
    return DASH if x is None else duration(x)


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def value_text(v: object) -> str:
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else fixed(v, 2)
    return str(v)


def ago(t: object, now: float) -> str:
    """A wall-clock instant relative to the snapshot: "12.0 s ago", or "in 5.0 s" (a due time)."""
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        return value_text(t)
    return f"in {duration(t - now)}" if t > now else duration(now - t) + " ago"


def clock_text(t: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t)) + " UTC"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    """Rows hold cell markup that is already escaped."""
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _error(part: Mapping[str, Any]) -> str:
    return f'<p class="error">unavailable: {esc(part["error"])}</p>' if part.get("error") else ""


def _meter(used: int, limit: int) -> str:
    return (f'{esc(used)} / {esc(limit)} <meter min="0" max="{esc(limit or 1)}" '
            f'value="{esc(used)}"></meter>')


def _ordered(keys: Sequence[str], first: Sequence[str]) -> list[str]:
    return [k for k in first if k in keys] + sorted(k for k in keys if k not in first)


# -- sections (mirrored in status.js) -----------------------------------------------------------

def _sync(s: Mapping[str, Any]) -> str:
    sync = s["sync"]
    if sync.get("error"):
        return _error(sync)
    figures = (f'<p class="figures"><span class="figure"><b>{esc(sync["queue_size"])}</b> queued'
               f'</span><span class="figure"><b>{esc(sync["in_progress"])}</b> syncing</span></p>')
    rows = [[esc(a["identifier"]), esc(secs(a["in_secs"]))] for a in sync["next_attempts"]]
    return figures + "<h3>Next attempts</h3>" + _table(["identifier", "in"], rows, "none scheduled")


def _domains(s: Mapping[str, Any]) -> str:
    sync = s["sync"]
    if sync.get("error"):
        return _error(sync)
    rows = [[esc(d["domain"]), _meter(d["in_flight"], d["max_concurrent"]), esc(d["queued"]),
             _meter(d["window_used"], d["max_per_window"])] for d in sync["domains"]]
    return _table(["domain", "in flight", "queued", "rate window"], rows, "no remote domain yet")


def _releases(s: Mapping[str, Any]) -> str:
    now = s["generated_at"]
    rows = []
    for r in s["releases"]:
        kind = str(r["kind"])
        event = f'<code title="{esc(r["event_id"])}">{esc(r["event_id"][:12])}</code>'
        rows.append([esc(ago(r["released_at"], now)), esc(kind_label(kind)),
                     esc(r["identifier"]), event, esc(secs(r["latency_secs"]))])
    return _table(["released", "kind", "identifier", "event", "held for"], rows,
                  "nothing released yet")


def _sources(s: Mapping[str, Any]) -> str:
    part = s["sync_sources"]
    if part.get("error"):
        return _error(part)
    conns = part["connections"]
    keys: list[str] = []
    for conn in conns:
        keys.extend(k for k in conn if k not in keys)
    keys = _ordered(keys, SOURCE_KEYS)
    now = s["generated_at"]

    def cell(key: str, conn: Mapping[str, Any]) -> str:
        v = conn.get(key)
        timed = key.endswith("_at") or key.endswith("_since")
        return esc(ago(v, now) if timed else value_text(v))

    rows = [[cell(k, conn) for k in keys] for conn in conns]
    headers = [k.replace("_", " ") for k in keys]
    return _table(headers, rows, "no sync sources configured")


def _purgatory(s: Mapping[str, Any]) -> str:
    part = s["purgatory"]
    if part.get("error"):
        return _error(part)
    counts = part["counts"]
    rows = [[esc(kind_label(k)), esc(counts[k])] for k in _ordered(list(counts), list(KIND_LABELS))]
    if rows:
        rows.append(["<b>total</b>", f"<b>{esc(part['total'])}</b>"])
    return _table(["kind", "held"], rows, "purgatory is empty")


_RENDERERS = {"sync": _sync, "domains": _domains, "releases": _releases, "sources": _sources,
              "purgatory": _purgatory}


def render_sections(snapshot: Mapping[str, Any]) -> dict[str, str]:
    """Section id -> inner HTML, exactly what the script's ``render`` returns."""
    return {name: _RENDERERS[name](snapshot) for name, _ in SECTIONS}


def render_page(snapshot: Mapping[str, Any], *, json_url: str, refresh_ms: int, title: str) -> str:
    """The complete HTML5 document with the snapshot's numbers already in it."""
    sections = render_sections(snapshot)
    body = "\n".join(
        f'<section id="{name}"><h2>{esc(heading)}</h2><div class="body" id="{name}-body">'
        f"{sections[name]}</div></section>"
        for name, heading in SECTIONS
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f'<body data-json-url="{esc(json_url)}" data-refresh-ms="{int(refresh_ms)}">\n'
        f"<header><h1>{esc(title)}</h1><p class=\"meta\">updated "
        f'<span id="updated">{esc(clock_text(snapshot["generated_at"]))}</span> '
        '<span id="live" class="live">server-rendered</span></p></header>\n'
        f"<main>\n{body}\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
