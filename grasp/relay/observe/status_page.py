"""The ``/status`` page: one self-contained HTML document, rendered twice by design.

The server renders every section into the HTML, so the page shows real numbers without
JavaScript (and to a screenshot or ``curl``). The inline script then polls ``/status.json`` and
re-renders the same sections in the browser. The two renderers are kept *identical in output*:
the Python functions below and the script's ``render`` produce the same markup for the same
snapshot (tests/relay/observe/test_status.py runs the script under Node and compares), which is why
number formatting mirrors JavaScript's ``Number.prototype.toFixed`` exactly.

Everything that came from the outside (identifiers, domains, URLs, error texts) is escaped on
both sides. The page loads nothing from anywhere: CSS and script (``static/status.css`` and
``static/status.js``, package data) are inline, and the response's
Content-Security-Policy allows exactly these two blocks (by hash) and fetches from its own
origin, so even an escaping mistake could not run injected script.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from grasp.relay.observe.fmt import (
    ago,
    clock_text,
    esc,
    fixed,
    secs,
    value_text,
)
from grasp.relay.observe.fmt import error as _error
from grasp.relay.observe.fmt import table as _table
from grasp.relay.observe.history_view import attempts_table, render_history, urls_table

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SECTIONS",
    "fixed",
    "render_identifier_page",
    "render_missing_identifier",
    "render_page",
    "render_sections",
]

#: Section ids, in page order, with their headings.
SECTIONS = (
    ("sync", "Sync queue"),
    ("domains", "Domains"),
    ("purgatory", "Purgatory"),
    ("history", "Sync history: why is it still held?"),
    ("releases", "Recent releases"),
    ("sources", "Sync sources"),
    ("peers", "Peers (GRASP-02)"),
)
PEER_KEYS = (
    "url",
    "state",
    "last_error",
    "events_received",
    "events_accepted",
    "last_reconciled_at",
    "nip77",
    "failures",
    "next_attempt_at",
    "origin",
)
KIND_LABELS = {
    "30617": "30617 announcements",
    "30618": "30618 states",
    "1618": "1618 PRs",
    "1619": "1619 PR updates",
    "placeholder": "PR placeholders",
}
SOURCE_KEYS = (
    "url",
    "state",
    "caught_up",
    "connected_since",
    "last_event_at",
    "events_received",
    "events_accepted",
    "events_duplicate",
    "events_rejected",
    "events_invalid",
    "reconnects",
    "next_attempt_at",
    "last_error",
)
#: The page's script and style, shipped as package data (``[options.package_data]``).
STATIC = resources.files("grasp.relay.observe").joinpath("static")


def _asset(name: str) -> str:
    """One file of ``static/`` (package data, so a wheel ships it), as the page inlines it.

    The block starts on a line of its own (``<script>`` + newline + file), and the CSP hash is
    taken over exactly that text: a byte changed in the file changes the hash with it.
    """
    return "\n" + STATIC.joinpath(name).read_text(encoding="utf-8")


# The page's only CSS and script; both are inlined, and the CSP names them by hash.
STYLE = _asset("status.css")
SCRIPT = _asset("status.js")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_csp_hash(SCRIPT)}; style-src {_csp_hash(STYLE)}; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


# -- sections (mirrored in status.js) -----------------------------------------------------------


def _meter(used: int, limit: int) -> str:
    return (
        f'{esc(used)} / {esc(limit)} <meter min="0" max="{esc(limit or 1)}" '
        f'value="{esc(used)}"></meter>'
    )


def _ordered(keys: Sequence[str], first: Sequence[str]) -> list[str]:
    return [k for k in first if k in keys] + sorted(k for k in keys if k not in first)


def _sync(s: Mapping[str, Any]) -> str:
    sync = s["sync"]
    if sync.get("error"):
        return _error(sync)
    figures = (
        f'<p class="figures"><span class="figure"><b>{esc(sync["queue_size"])}</b> queued'
        f'</span><span class="figure"><b>{esc(sync["in_progress"])}</b> syncing</span></p>'
    )
    rows = [[esc(a["identifier"]), esc(secs(a["in_secs"]))] for a in sync["next_attempts"]]
    return figures + "<h3>Next attempts</h3>" + _table(["identifier", "in"], rows, "none scheduled")


def _domains(s: Mapping[str, Any]) -> str:
    sync = s["sync"]
    if sync.get("error"):
        return _error(sync)
    rows = [
        [
            esc(d["domain"]),
            _meter(d["in_flight"], d["max_concurrent"]),
            esc(d["queued"]),
            _meter(d["window_used"], d["max_per_window"]),
        ]
        for d in sync["domains"]
    ]
    return _table(["domain", "in flight", "queued", "rate window"], rows, "no remote domain yet")


def _releases(s: Mapping[str, Any]) -> str:
    now = s["generated_at"]
    rows = []
    for r in s["releases"]:
        kind = str(r["kind"])
        event = f'<code title="{esc(r["event_id"])}">{esc(r["event_id"][:12])}</code>'
        rows.append(
            [
                esc(ago(r["released_at"], now)),
                esc(kind_label(kind)),
                esc(r["identifier"]),
                event,
                esc(secs(r["latency_secs"])),
            ]
        )
    return _table(
        ["released", "kind", "identifier", "event", "held for"], rows, "nothing released yet"
    )


def _sources(s: Mapping[str, Any]) -> str:
    return _records(s, s["sync_sources"], "connections", SOURCE_KEYS, "no sync sources configured")


def _peers(s: Mapping[str, Any]) -> str:
    """S17.4: per peer its state, last error, events received, last reconciliation."""
    part = s.get("peers") or {"peers": []}
    return _records(s, part, "peers", PEER_KEYS, "no peers")


def _records(
    s: Mapping[str, Any], part: Mapping[str, Any], key: str, order: Any, empty: str
) -> str:
    """One row per record, one column per key (``order`` first), times shown as ages."""
    if part.get("error"):
        return _error(part)
    conns = part[key]
    keys: list[str] = []
    for conn in conns:
        keys.extend(k for k in conn if k not in keys)
    keys = _ordered(keys, order)
    now = s["generated_at"]

    def cell(key: str, conn: Mapping[str, Any]) -> str:
        v = conn.get(key)
        timed = key.endswith("_at") or key.endswith("_since")
        return esc(ago(v, now) if timed else value_text(v))

    rows = [[cell(k, conn) for k in keys] for conn in conns]
    headers = [k.replace("_", " ") for k in keys]
    return _table(headers, rows, empty)


def _purgatory(s: Mapping[str, Any]) -> str:
    part = s["purgatory"]
    if part.get("error"):
        return _error(part)
    counts = part["counts"]
    rows = [[esc(kind_label(k)), esc(counts[k])] for k in _ordered(list(counts), list(KIND_LABELS))]
    if rows:
        rows.append(["<b>total</b>", f"<b>{esc(part['total'])}</b>"])
    return _table(["kind", "held"], rows, "purgatory is empty")


_RENDERERS = {
    "history": render_history,
    "sync": _sync,
    "domains": _domains,
    "releases": _releases,
    "sources": _sources,
    "purgatory": _purgatory,
    "peers": _peers,
}


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
        f'<header><h1>{esc(title)}</h1><p class="meta">updated '
        f'<span id="updated">{esc(clock_text(snapshot["generated_at"]))}</span> '
        '<span id="live" class="live">server-rendered</span></p></header>\n'
        f"<main>\n{body}\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def _document(title: str, header: str, body: str) -> str:
    """A server-only page in the style of ``/status`` (no script: nothing to mirror)."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="refresh" content="10">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<header>{header}</header>\n<main class="single">\n{body}\n</main>\n</body>\n</html>\n'
    )


def render_identifier_page(entry: Mapping[str, Any], *, now: float, title: str) -> str:
    """``/status/<identifier>``: one identifier's queue state, clone URLs and attempts (S18.1)."""
    identifier = entry["identifier"]
    header = (
        f'<h1>{esc(identifier)}</h1><p class="meta">sync history at {esc(clock_text(now))} '
        '&middot; <a href="/status">back to the status page</a></p>'
    )
    figures = (
        f'<p class="figures"><span class="figure"><b>{esc(entry["state"])}</b></span>'
        f'<span class="figure"><b>{esc(entry["attempt_count"])}</b> retries</span>'
        f'<span class="figure"><b>{esc(entry["requests"])}</b> requests</span>'
        f'<span class="figure">next attempt <b>{esc(ago(entry["next_attempt_at"], now))}</b>'
        "</span></p>"
    )
    body = (
        f'<section id="summary"><h2>State</h2>{figures}</section>\n'
        f'<section id="urls"><h2>Clone URLs</h2>{urls_table(entry["urls"], now)}</section>\n'
        '<section id="attempts"><h2>Attempts, newest first</h2>'
        f"{attempts_table(entry['attempts'], now)}</section>"
    )
    return _document(f"{title}: {identifier}", header, body)


def render_missing_identifier(identifier: str, reason: str, *, title: str) -> str:
    """The page for an identifier nothing is known about (or whose history is unavailable)."""
    header = (
        f"<h1>{esc(identifier)}</h1>"
        '<p class="meta"><a href="/status">back to the status page</a></p>'
    )
    return _document(f"{title}: {identifier}", header, f'<p class="empty">{esc(reason)}</p>')
