"""CORS for browser git clients, in a real browser (GRASP-01 L64-L67, S15.3).

Headless Chromium loads a page from one origin (a small HTTP server of the test, its own port)
whose script ``fetch()``es the relay's ``info/refs?service=git-upload-pack`` on another origin
with ``Git-Protocol: version=2`` — a header that makes the browser send a CORS preflight first
— and writes what it could read into the page. The test reads the DOM after the script ran.

A second fetch sends a header the relay does not allow: the browser must refuse it. That is the
control proving the browser really enforces CORS here (so the first fetch passing means
something).

Chromium is Debian's ``chromium`` (``.ci/run`` installs it); without it the test skips and says
why. (On main, ``tests/support/chromium.py`` starts it the same way; this module keeps its own
runner until the branches meet.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from gevent.pywsgi import WSGIServer

from tests.conformance.support import Grasp, fresh
from tests.support.chromium import needs_chromium, run_chromium
from tests.support.nip34 import Key

pytestmark = [pytest.mark.slow, needs_chromium]

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>browser git client</title>
</head><body><pre id="v2">pending</pre><pre id="control">pending</pre><script>
async function probe(id, headers) {
  const out = document.getElementById(id);
  try {
    const answer = await fetch(%(url)s, {headers: headers});
    const text = await answer.text();
    out.textContent = JSON.stringify({status: answer.status,
      type: answer.headers.get("content-type"), body: text});
  } catch (error) {
    out.textContent = JSON.stringify({error: String(error)});
  }
}
probe("v2", {"Git-Protocol": "version=2"});
probe("control", {"X-Not-Allowed-By-The-Relay": "1"});
</script></body></html>
"""


def dom_after_scripts(profile: Path, url: str) -> str:
    """The DOM after the page's scripts ran (``--virtual-time-budget`` lets fetches finish)."""
    return run_chromium(profile, url, "--virtual-time-budget=5000", "--dump-dom").stdout


@pytest.fixture
def page_server(grasp: Grasp) -> Iterator[tuple[str, str]]:
    """A page on another origin that fetches the advertisement of a repository of ``grasp``;
    yields (page URL, the fetched URL)."""
    owner, d = Key(), fresh("browser")
    grasp.publish(grasp.announcement(owner, d))
    target = grasp.clone_url(owner, d) + "/info/refs?service=git-upload-pack"
    body = (PAGE % {"url": json.dumps(target)}).encode()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body]

    server = WSGIServer(("127.0.0.1", 0), app, log=None, error_log=None)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", target
    finally:
        server.stop(timeout=5)


def _result(dom: str, element: str) -> dict:
    start = dom.index(f'<pre id="{element}">') + len(f'<pre id="{element}">')
    text = dom[start : dom.index("</pre>", start)]
    return json.loads(text.replace("&quot;", '"').replace("&amp;", "&"))


def test_grasp01_l66_a_browser_on_another_origin_reads_the_v2_advertisement(page_server, tmp_path):
    page, target = page_server
    assert page.split("/")[2] != target.split("/")[2]  # really another origin (port)
    dom = dom_after_scripts(tmp_path / "profile", page)
    v2 = _result(dom, "v2")
    assert v2.get("status") == 200, v2
    assert v2["type"] == "application/x-git-upload-pack-advertisement"  # an exposed header
    assert v2["body"].startswith("000eversion 2\n") and "ls-refs" in v2["body"]
    control = _result(dom, "control")
    assert "error" in control and "fetch" in control["error"].lower(), control
