"""The status board (S13, ARCHITECTURE §6): snapshot from live sources, ``/status.json``, and the
self-contained ``/status`` page that renders without JavaScript and escapes what it shows."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from gevent.pywsgi import WSGIServer

from actors.system import SyncStatus
from grasp.relay.observe.history_view import why
from grasp.relay.observe.status import StatusBoard
from grasp.relay.observe.status_page import (
    CONTENT_SECURITY_POLICY,
    SCRIPT,
    STYLE,
    render_sections,
)
from grasp.relay.sync_sources.status import SourceState, SyncSourceStatus
from grasp.relay.transport.http import STATUS_JSON_MOUNT, STATUS_MOUNT, RelayApp
from messages.history import AttemptRecord, IdentifierHistory, SyncHistoryReport, UrlRecord
from messages.scheduler import SchedulerStatus
from messages.throttle import ThrottleStatus

HOSTILE = "<script>alert('x')</script>&\""
NOW = 1_700_000_000.0


def sync_status(identifier: str = "repo-a", domain: str = "git.example") -> SyncStatus:
    return SyncStatus(
        SchedulerStatus(
            queue_size=3, in_progress=1, next_attempts=((identifier, 1.25), ("repo-b", 42.0))
        ),
        (
            ThrottleStatus(
                domain, in_flight=2, queued=5, window_used=7, max_concurrent=4, max_per_window=60
            ),
        ),
    )


GONE, GIT = "https://gone.example/r.git", "git://old.example/r.git"


def history(identifier: str = "repo-a", url: str = GONE) -> SyncHistoryReport:
    """One held identifier whose two URLs failed: a 404 and a permanent policy refusal."""
    return SyncHistoryReport(
        (
            IdentifierHistory(
                identifier,
                "queued",
                attempt_count=2,
                next_attempt_in=38.5,
                requests=3,
                attempts=(
                    AttemptRecord(
                        url, None, "failed", "not_found", "HTTP 404", 0, 1, 0, None, 0.25, 1.5
                    ),
                    AttemptRecord(
                        GIT, "old.example", "failed", "policy", "git:// is disabled", ago=21.5
                    ),
                    AttemptRecord(
                        url, None, "partial", "missing_objects", "", 1, 2, 1, 5000, 12.5, 22.0
                    ),
                ),
                urls=(
                    UrlRecord(url, 2, "failed", "not_found", "HTTP 404", 1, 1.5),
                    UrlRecord(GIT, 1, "failed", "policy", "git:// is disabled", 0, 21.5, True),
                ),
            ),
            IdentifierHistory("repo-done", "done", requests=1),
        ),
        total=4,
    )


COUNTS = {"30617": 1, "30618": 4, "1618": 2, "1619": 0, "placeholder": 1}
SOURCE = {
    "url": "wss://other.example",
    "state": "connected",
    "connected_since": NOW - 30,
    "last_event_at": NOW - 2.5,
    "events_received": 17,
    "events_accepted": 15,
    "reconnects": 0,
    "last_error": None,
}


PEER = {
    "url": "wss://peer.example",
    "origin": "announcement",
    "state": "live (NIP-77)",
    "last_error": None,
    "events_received": 4,
    "events_accepted": 3,
    "last_reconciled_at": NOW - 60,
    "nip77": True,
    "failures": 0,
    "next_attempt_at": None,
}


def board(**overrides) -> StatusBoard:
    args = dict(
        sync_status=sync_status,
        purgatory_counts=lambda: dict(COUNTS),
        sync_sources=lambda: [dict(SOURCE)],
        sync_history=lambda identifier=None: history(),
        peers=lambda: [dict(PEER)],
        clock=lambda: NOW,
    )
    args.update(overrides)
    return StatusBoard(**args)


def call(app, method: str = "GET", path: str = "/status.json") -> tuple[str, dict, bytes]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path}
    setup_testing_defaults(environ)
    seen: dict = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def test_s13_snapshot_gathers_every_source():
    b = board(node="relay-1-0a1b2c3d")  # S19.2: the node id its leases carry
    b.record_release("e" * 64, 30618, "repo-a", 12.5)
    assert b.snapshot() == {
        "generated_at": NOW,
        "node": "relay-1-0a1b2c3d",
        "sync": {
            "queue_size": 3,
            "in_progress": 1,
            "error": None,
            "next_attempts": [
                {"identifier": "repo-a", "in_secs": 1.25},
                {"identifier": "repo-b", "in_secs": 42.0},
            ],
            "domains": [
                {
                    "domain": "git.example",
                    "in_flight": 2,
                    "queued": 5,
                    "window_used": 7,
                    "max_concurrent": 4,
                    "max_per_window": 60,
                }
            ],
        },
        "history": {
            "identifiers": [
                {
                    "identifier": "repo-a",
                    "state": "queued",
                    "attempt_count": 2,
                    "next_attempt_at": NOW + 38.5,
                    "requests": 3,
                    "urls": [
                        {
                            "url": GONE,
                            "attempts": 2,
                            "outcome": "failed",
                            "reason": "not_found",
                            "detail": "HTTP 404",
                            "missing": 1,
                            "last_at": NOW - 1.5,
                            "permanent": False,
                        },
                        {
                            "url": GIT,
                            "attempts": 1,
                            "outcome": "failed",
                            "reason": "policy",
                            "detail": "git:// is disabled",
                            "missing": 0,
                            "last_at": NOW - 21.5,
                            "permanent": True,
                        },
                    ],
                    "attempts": [
                        {
                            "started_at": NOW - 1.5,
                            "url": GONE,
                            "path": "main",
                            "outcome": "failed",
                            "reason": "not_found",
                            "detail": "HTTP 404",
                            "fetched": 0,
                            "missing": 1,
                            "released": 0,
                            "bytes": None,
                            "seconds": 0.25,
                        },
                        {
                            "started_at": NOW - 21.5,
                            "url": GIT,
                            "path": "queue old.example",
                            "outcome": "failed",
                            "reason": "policy",
                            "detail": "git:// is disabled",
                            "fetched": 0,
                            "missing": 0,
                            "released": 0,
                            "bytes": None,
                            "seconds": None,
                        },
                        {
                            "started_at": NOW - 22.0,
                            "url": GONE,
                            "path": "main",
                            "outcome": "partial",
                            "reason": "missing_objects",
                            "detail": "",
                            "fetched": 1,
                            "missing": 2,
                            "released": 1,
                            "bytes": 5000,
                            "seconds": 12.5,
                        },
                    ],
                },
                {
                    "identifier": "repo-done",
                    "state": "done",
                    "attempt_count": 0,
                    "next_attempt_at": None,
                    "requests": 1,
                    "urls": [],
                    "attempts": [],
                },
            ],
            "total": 4,
            "error": None,
        },
        "purgatory": {"counts": COUNTS, "total": 8, "error": None},
        "releases": [
            {
                "event_id": "e" * 64,
                "kind": 30618,
                "identifier": "repo-a",
                "latency_secs": 12.5,
                "released_at": NOW,
            }
        ],
        "sync_sources": {"connections": [SOURCE], "error": None},
        "peers": {"peers": [PEER], "error": None},  # S17.4
    }


def test_recent_releases_are_a_bounded_ring_newest_first():
    b = board(max_releases=3)
    for i in range(5):
        b.record_release(f"{i:064x}", 1618, f"repo{i}", float(i))
    b.record_release("bad", "not a kind", "repo", None)  # type: ignore[arg-type]  # dropped
    assert [r["identifier"] for r in b.snapshot()["releases"]] == ["repo4", "repo3", "repo2"]


def test_a_failing_source_marks_its_section_and_spares_the_rest():
    def broken():
        raise TimeoutError("Scheduler did not answer")

    b = board(
        sync_status=broken,
        sync_sources=lambda: [{"url": "wss://x", "rtt": float("inf"), "mode": object()}],
    )
    b.record_release("a" * 64, 30617, "repo", float("nan"))
    snap = b.snapshot()
    assert snap["sync"]["error"] == "TimeoutError: Scheduler did not answer"
    assert snap["sync"]["next_attempts"] == [] and snap["sync"]["domains"] == []
    assert snap["purgatory"]["total"] == 8
    assert snap["releases"][0]["latency_secs"] is None
    conn = snap["sync_sources"]["connections"][0]
    assert conn["rtt"] is None and conn["mode"].startswith("<object")
    json.dumps(snap, allow_nan=False)  # always valid JSON
    sections = render_sections(snap)
    assert "unavailable: TimeoutError: Scheduler did not answer" in sections["sync"]
    assert "unavailable" not in sections["purgatory"]


def test_sync_source_status_records_are_shown_as_the_sync_sources_module_reports_them():
    """SyncSources.status() returns dataclasses with an enum-valued state; the board takes them."""
    record = SyncSourceStatus(
        url="wss://peer.example",
        state=SourceState.BACKING_OFF,
        connected_since=None,
        last_event_at=NOW - 90,
        events_received=10,
        events_accepted=7,
        events_duplicate=2,
        events_rejected=1,
        events_invalid=0,
        reconnects=3,
        last_error="refused",
        next_attempt_at=NOW + 20,
        caught_up=False,
    )
    snap = board(sync_sources=lambda: [record]).snapshot()
    conn = snap["sync_sources"]["connections"][0]
    assert conn["state"] == "backing off" and conn["next_attempt_at"] == NOW + 20
    json.dumps(snap, allow_nan=False)
    html = render_sections(snap)["sources"]
    headers = re.findall(r"<th>([^<]*)</th>", html)
    assert headers[:5] == ["url", "state", "caught up", "connected since", "last event at"]
    assert "<td>in 20.0 s</td>" in html and "<td>90.0 s ago</td>" in html
    assert "<td>backing off</td>" in html and "<td>no</td>" in html


def test_status_json_over_wsgi():
    b = board()
    b.record_release("f" * 64, 1619, "repo-a", None)
    status, headers, body = call(b.json_app())
    assert status == "200 OK"
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body) == b.snapshot()
    status, headers, body = call(b.json_app(), "HEAD")
    assert status == "200 OK" and body == b"" and int(headers["Content-Length"]) > 0
    assert call(b.json_app(), "POST")[0].startswith("405")


def test_status_page_shows_the_numbers_without_javascript():
    b = board()
    b.record_release("c0ffee" + "0" * 58, 30618, "repo-released", 3.25)
    status, headers, body = call(b.html_app(), path="/status")
    page = body.decode()
    assert status == "200 OK" and headers["Content-Type"] == "text/html; charset=utf-8"
    text = _visible_text(page)
    for expected in (
        "3 queued",
        "1 syncing",
        "repo-a",
        "1.3 s",
        "42.0 s",
        "git.example",
        "2 / 4",
        "7 / 60",
        "repo-released",
        "3.3 s",
        "c0ffee000000",
        "wss://other.example",
        "connected",
        "30.0 s ago",
        "17",
        "30618 states",
        "PR placeholders",
        "total",
        "8",
        "22:13:20 UTC",
        # the sync history (S18.1): each URL with its last answer, the attempts expandable
        f"{GONE} not_found: HTTP 404 (2\u00d7, 1.5 s ago)",
        f"{GIT} refused by the fetch policy: git:// is disabled; not tried again (1\u00d7",
        "in 38.5 s",
        "3 of 3 attempts",
        "queue old.example",
        "lacks 2 needed objects",
        "1 arrived, 2 missing",
        "4.9 KiB",
        "12.5 s",
        "2 of 4 identifiers shown",
    ):
        assert expected in text, expected
    assert '<meter min="0" max="4" value="2"></meter>' in page
    assert '<a href="/status/repo-a">repo-a</a>' in page
    assert '<details data-identifier="repo-a"><summary>' in page  # expands without JavaScript


def test_status_page_is_self_contained_and_its_csp_admits_only_its_own_blocks():
    _, headers, body = call(board(sync_sources=list).html_app(), path="/status")
    page = body.decode()
    # clone URLs are shown as text; no attribute points anywhere (no http://, protocol-relative)
    assert not re.search(r'=\s*"[^"]*//', page)
    assert not re.search(r"\bsrc\s*=|@import|url\(", page)
    # the only links are same-origin ones to the per-identifier pages (S18.1)
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    assert set(re.findall(r'href="([^"]*)"', markup)) == {"/status/repo-a", "/status/repo-done"}
    assert page.count("<script>") == 1 and page.count("<style>") == 1
    assert 'data-json-url="/status.json"' in page
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    for block in (SCRIPT, STYLE):
        assert f"<{'script' if block is SCRIPT else 'style'}>{block}<" in page
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


def test_status_page_is_well_formed_html5():
    checker = _TagChecker()
    checker.feed(call(board().html_app(), path="/status")[2].decode())
    checker.close()
    assert checker.doctype == "DOCTYPE html"
    assert checker.errors == [] and checker.stack == []
    assert len(checker.ids) == len(set(checker.ids))


def test_status_page_escapes_hostile_text():
    b = board(
        sync_status=lambda: sync_status(HOSTILE, HOSTILE),
        sync_sources=lambda: [{"url": HOSTILE, "last_error": HOSTILE}],
        sync_history=lambda identifier=None: history(HOSTILE, HOSTILE),
    )
    b.record_release(HOSTILE, 1618, HOSTILE, 1.0)
    page = call(b.html_app(), path="/status")[2].decode()
    assert "<script>alert" not in page
    assert page.count("<script") == 1
    assert page.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;&quot;") >= 9
    assert 'href="/status/%3Cscript%3Ealert(&#x27;x&#x27;)%3C%2Fscript%3E%26%22"' in page
    json_body = call(b.json_app())[2]
    assert json.loads(json_body)["releases"][0]["identifier"] == HOSTILE


def test_mounted_on_a_real_relay_port_both_paths_answer():
    """/status and /status.json are distinct mounts on the relay's one port (ARCHITECTURE §6)."""
    b = board()
    app = RelayApp(
        info={"name": "t"},
        session_factory=lambda *a: None,
        mounts={STATUS_MOUNT: b.html_app(), STATUS_JSON_MOUNT: b.json_app()},
    )
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with urllib.request.urlopen(base + "/status.json", timeout=5) as resp:
            assert json.load(resp)["sync"]["queue_size"] == 3
        with urllib.request.urlopen(base + "/status", timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith("text/html")
            assert "3</b> queued" in resp.read().decode()
    finally:
        server.stop(timeout=2)


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_live_script_renders_exactly_what_the_server_rendered(tmp_path: Path):
    """The page's script, run under Node on a fake DOM, fetches the JSON URL and writes the
    same markup the server produced, ties in rounding and hostile text included."""
    b = board(
        sync_status=lambda: SyncStatus(
            SchedulerStatus(2, 0, (("tie", 0.25), (HOSTILE, -0.04), ("x", 2.675))),
            (ThrottleStatus(HOSTILE, 0, 0, 0, 0, 0),),
        ),
        sync_sources=lambda: [
            {**SOURCE, "9": 1.5, "zz": True},
            {"url": HOSTILE, "state": None},
            {
                "url": "wss://up.example",
                "connected_since": NOW - 8000.5,
                "last_event_at": NOW - 500,
                "next_attempt_at": NOW + 4.25,
            },
        ],
        sync_history=lambda identifier=None: SyncHistoryReport(
            (
                *history(HOSTILE, HOSTILE).identifiers,
                IdentifierHistory(
                    "ünï cødé !'()*~ x",
                    "syncing",
                    requests=4,
                    attempts=tuple(
                        AttemptRecord(GONE, None, "released", None, "", 1, 0, 2, size, took, 0.25)
                        for size, took in ((1023, 9.995), (1024, 10.0), (1048576, 0.005))
                    ),
                    urls=(UrlRecord(GONE, 4, "partial", "missing_objects", "", 1, 0.25),),
                ),
            ),
            total=3,
        ),
    )
    for latency in (0.25, None, 1e-7, 7300.5):
        b.record_release("d" * 64, 1619, HOSTILE, latency)
    snap = b.snapshot()
    (tmp_path / "snapshot.json").write_text(json.dumps(snap))
    (tmp_path / "script.js").write_text(SCRIPT)
    (tmp_path / "run.js").write_text(_NODE_DRIVER)
    out = subprocess.run(
        [NODE, str(tmp_path / "run.js"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["rendered"] == render_sections(snap)
    joined = "".join(render_sections(snap).values())
    for shown in (
        "0.3 s",
        "-0.0 s",
        "2.7 s",
        "2 h 13 min ago",
        "8 min ago",
        "2 h 01 min",
        "in 4.3 s",
        "1023 B",
        "1.0 KiB",
        "1.0 MiB",
        "9.99 s",
        "10.0 s",
        "0.01 s",
        "lacks 1 needed object <span",
        'href="/status/%C3%BCn%C3%AF%20c%C3%B8d%C3%A9%20!&#x27;()*~%20x"',
    ):
        assert shown in joined, shown  # the cases where two renderers could drift apart
    assert result["fetched"] == ["/status.json"]
    assert result["dom"] == {f"{k}-body": v for k, v in render_sections(snap).items()}
    assert result["updated"] == "22:13:20 UTC" and result["live"] == "live"
    assert result["reopened"] == [HOSTILE]  # a history the reader opened stays open (S18.1)


_NODE_DRIVER = r"""
const fs = require("fs"), vm = require("vm"), path = require("path");
const dir = process.argv[2];
const snapshot = JSON.parse(fs.readFileSync(path.join(dir, "snapshot.json"), "utf8"));
const script = fs.readFileSync(path.join(dir, "script.js"), "utf8");
const rendered = (() => { const ctx = {}; vm.runInNewContext(script, ctx);
                          return ctx.GraspStatus.render(snapshot); })();
const elements = {};
const element = (id) => elements[id] || (elements[id] = {id, innerHTML: "", textContent: ""});
const body = {getAttribute: (n) => ({"data-json-url": "/status.json", "data-refresh-ms":
"2000"})[n]};
const fetched = [], reopened = [], OPEN = snapshot.history.identifiers[0].identifier;
const details = (id) => ({getAttribute: (n) => (n === "data-identifier" ? id : null),
                          setAttribute: (n) => { if (n === "open") reopened.push(id); }});
const ctx = {
  document: {body, getElementById: element, querySelectorAll: (selector) =>
    selector === "details[open]" ? [details(OPEN)] : [details(OPEN), details("closed one")]},
  fetch: (url) => { fetched.push(url);
                    return Promise.resolve({ok: true, json: () => Promise.resolve(snapshot)}); },
  setTimeout: () => {},  // one poll is enough
};
ctx.window = ctx;
vm.runInNewContext(script, ctx);
setImmediate(() => {
  const dom = {};
  for (const [id, el] of Object.entries(elements)) if (id.endsWith("-body")) dom[id] = el.innerHTML;
  process.stdout.write(JSON.stringify({rendered, fetched, dom, reopened, updated:
  elements.updated.textContent,
                                       live: elements.live.textContent}));
});
"""


def _visible_text(page: str) -> str:
    body = re.sub(r"<(script|style)>.*?</\1>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


class _TagChecker(HTMLParser):
    """Balanced non-void elements, one doctype, unique ids: what a browser needs to not guess."""

    VOID = {"meta", "link", "br", "hr", "img", "input", "wbr", "source", "col", "area", "base"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.doctype: str | None = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.ids.extend(v for k, v in attrs if k == "id")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def one_identifier(identifier=None):
    """A history source like the Scheduler's: ``identifier`` narrows to that one, if known."""
    report = history("ünï-repo")
    if identifier is None:
        return report
    known = tuple(h for h in report.identifiers if h.identifier == identifier)
    return SyncHistoryReport(known, len(known))


def test_s18_1_status_identifier_shows_one_identifiers_urls_and_attempts():
    app = board(sync_history=one_identifier).html_app()
    status, headers, body = call(app, path="/status/" + "ünï-repo".encode().decode("latin-1"))
    page = body.decode()
    assert status == "200 OK" and headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    text = _visible_text(page)
    for expected in (
        "ünï-repo",
        "queued",
        "2 retries",
        "3 requests",
        "next attempt in 38.5 s",
        f"{GONE} 2 not_found: HTTP 404 1.5 s ago",
        f"{GIT} 1 refused by the fetch policy: git:// is disabled; not tried again 21.5 s ago",
        "1.5 s ago",
        "queue old.example",
        "0.25 s",
    ):
        assert expected in text, expected
    assert "<script" not in page and '<a href="/status">' in page
    checker = _TagChecker()
    checker.feed(page)
    assert checker.errors == [] and checker.stack == []


def test_s18_1_status_identifier_is_404_when_nothing_is_known_and_503_when_unavailable():
    status, _, body = call(board(sync_history=one_identifier).html_app(), path="/status/nope")
    assert status == "404 Not Found" and "no sync attempt is recorded" in body.decode()

    def broken(identifier=None):
        raise TimeoutError("Scheduler did not answer")

    status, _, body = call(board(sync_history=broken).html_app(), path="/status/repo-a")
    assert status.startswith("503") and "Scheduler did not answer" in body.decode()
    assert call(board().html_app(), "HEAD", path="/status/repo-a")[2] == b""
    snap = board(sync_history=broken).snapshot()  # the main page survives a broken history
    assert snap["history"]["error"] == "TimeoutError: Scheduler did not answer"
    assert "unavailable" in render_sections(snap)["history"]


def test_s18_1_status_identifier_over_a_real_port_decodes_the_path_once():
    """A percent-encoded UTF-8 identifier reaches the page as the identifier (S10.4)."""
    b = board(sync_history=one_identifier)
    app = RelayApp(
        info={"name": "t"},
        session_factory=lambda *a: None,
        mounts={STATUS_JSON_MOUNT: b.json_app(), STATUS_MOUNT: b.html_app()},
    )
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with urllib.request.urlopen(base + "/status/%C3%BCn%C3%AF-repo", timeout=5) as resp:
            assert "<h1>ünï-repo</h1>" in resp.read().decode()
        with urllib.request.urlopen(base + "/status", timeout=5) as resp:
            assert 'href="/status/%C3%BCn%C3%AF-repo"' in resp.read().decode()
    finally:
        server.stop(timeout=2)


def test_s19_2_status_names_the_node():
    """A cluster's nodes sit behind one load balancer: each page says which node answered."""
    b = board(node="relay-1-0a1b2c3d")
    status, _, body = call(b.html_app(), path="/status")
    assert status.startswith("200") and b"(node relay-1-0a1b2c3d)" in body
    assert b"(node" not in call(board().html_app(), path="/status")[2]


def test_s18_1_a_failed_release_is_shown_without_the_path_on_our_disk():
    """``release_failed``'s detail is the Releaser's error, which names the repository's path
    on the relay's disk: the page says what happened and points to the log instead."""
    record = {"outcome": "released", "reason": "release_failed", "detail": "/srv/r.git: locked"}
    text = why(record)
    assert "the release failed" in text and "/srv" not in text
