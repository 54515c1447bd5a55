"""The sync history on the status pages (S18.1): why an identifier is still held.

``/status`` gets a row per identifier (held ones first) naming each clone URL with its last
answer, and under it the identifier's whole kept history in a ``<details>`` that expands
without JavaScript. ``/status/<identifier>`` shows one identifier alone. The section renderer
is mirrored in ``static/status.js`` (``history``) like every section of ``/status``; the
per-identifier page is rendered by the server only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grasp.relay.observe.fmt import (
    DASH,
    ago,
    bytes_text,
    error,
    esc,
    link_path,
    table,
    took,
    value_text,
)
from messages.scheduler import RELEASE_FAILED

__all__ = [
    "HISTORY_PATH",
    "attempts_table",
    "identifier_link",
    "render_history",
    "urls_table",
    "why",
]

#: Where one identifier's history is served: ``/status/<identifier>`` (percent-encoded).
HISTORY_PATH = "/status/"
TIMES = "\u00d7"
ATTEMPT_HEADERS = (
    "started",
    "url",
    "path",
    "outcome",
    "why",
    "objects",
    "released",
    "stored",
    "took",
)


def why(r: Mapping[str, Any]) -> str:
    """One answer in words: the failure and its detail, what a server lacked, or the outcome."""
    reason, detail = r.get("reason"), r.get("detail") or ""
    if reason == "policy":
        text = "refused by the fetch policy: " + detail
        return text + "; not tried again" if r.get("permanent") else text
    if reason == "missing_objects":
        n = r.get("missing") or 0
        return f"lacks {n} needed object" + ("" if n == 1 else "s")
    if reason == RELEASE_FAILED:  # the detail names a path on our disk: the log has it
        return "everything arrived, but the release failed (the relay's log says why); retried"
    if reason:
        return f"{reason}: {detail}" if detail else str(reason)
    return str(r.get("outcome"))


def identifier_link(identifier: str) -> str:
    href = link_path(HISTORY_PATH, identifier)
    if href is None:
        return esc(identifier)
    return f'<a href="{esc(href)}">{esc(identifier)}</a>'


def _url_line(u: Mapping[str, Any], now: float) -> str:
    state = "bad" if u.get("reason") else "ok"
    counts = f"{u['attempts']}{TIMES}, {ago(u['last_at'], now)}"
    return (
        f'<div class="url {state}"><code>{esc(u["url"])}</code> {esc(why(u))} '
        f'<span class="muted">({esc(counts)})</span></div>'
    )


def attempts_table(attempts: list[Mapping[str, Any]], now: float) -> str:
    rows = [
        [
            esc(ago(a["started_at"], now)),
            f"<code>{esc(a['url'])}</code>",
            esc(a["path"]),
            esc(a["outcome"]),
            esc(why(a)),
            esc(f"{a['fetched']} arrived, {a['missing']} missing"),
            esc(value_text(a["released"])),
            esc(bytes_text(a["bytes"])),
            esc(took(a["seconds"])),
        ]
        for a in attempts
    ]
    return table(ATTEMPT_HEADERS, rows, "no attempt recorded yet")


def urls_table(urls: list[Mapping[str, Any]], now: float) -> str:
    rows = [
        [
            f"<code>{esc(u['url'])}</code>",
            esc(u["attempts"]),
            esc(why(u)),
            esc(ago(u["last_at"], now)),
        ]
        for u in urls
    ]
    return table(("url", "asked", "last answer", "when"), rows, "no URL asked yet")


def _row(h: Mapping[str, Any], now: float) -> str:
    urls = "".join(_url_line(u, now) for u in h["urls"]) or esc(DASH)
    cells = (
        identifier_link(h["identifier"]),
        esc(h["state"]),
        esc(h["attempt_count"]),
        esc(ago(h["next_attempt_at"], now)),
        urls,
    )
    summary = f"{len(h['attempts'])} of {h['requests']} attempts"
    return (
        f'<tr class="{esc(h["state"])}">'
        + "".join(f"<td>{c}</td>" for c in cells)
        + '</tr><tr class="attempts"><td colspan="5">'
        f'<details data-identifier="{esc(h["identifier"])}"><summary>{esc(summary)}</summary>'
        f"{attempts_table(h['attempts'], now)}</details></td></tr>"
    )


def render_history(s: Mapping[str, Any]) -> str:
    """The ``history`` section of ``/status``: a row per identifier, its history expandable."""
    part = s["history"]
    if part.get("error"):
        return error(part)
    held = part["identifiers"]
    if not held:
        return '<p class="empty">no identifier queued or attempted</p>'
    now = s["generated_at"]
    head = "".join(
        f"<th>{h}</th>" for h in ("identifier", "state", "retries", "next attempt", "clone URLs")
    )
    body = "".join(_row(h, now) for h in held)
    more = ""
    if part["total"] > len(held):
        more = (
            f'<p class="empty">{esc(len(held))} of {esc(part["total"])} identifiers shown; '
            f"{esc(HISTORY_PATH)}&lt;identifier&gt; shows any other</p>"
        )
    return (
        f'<table class="history"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>' + more
    )
