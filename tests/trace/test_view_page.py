"""The trace viewer as a package and as a page (S13.3 traces): modules import only downward
and only the standard library, and the "show all Ticks" checkbox really switches views in a
browser (headless Chromium, Debian's ``chromium``; skipped where it is missing)."""

from __future__ import annotations

import ast
import html
import re
import subprocess
import sys

import pytest

from tests.support.chromium import needs_chromium, run_chromium
from tests.trace.svgread import ROOT, TRACES, render

VIEW = ROOT / "actors" / "trace" / "view"
#: What each module may import of ours: ``__main__`` → ``page`` → ``svg`` → ``layout`` →
#: ``format`` (and the actor names, a standard-library-only module).
ALLOWED = {
    "__init__": set(),
    "__main__": {"actors.trace.format", "actors.trace.view.layout", "actors.trace.view.page"},
    "page": {"actors.trace.view.layout", "actors.trace.view.svg"},
    "svg": {"actors.trace.format", "actors.trace.view.layout", "actors.urls"},
    "layout": {"actors.trace.format", "actors.names"},
}


def imports(path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_view_modules_import_only_downward_and_only_the_standard_library():
    assert sorted(p.stem for p in VIEW.glob("*.py")) == sorted(ALLOWED)
    assert not list((ROOT / "actors").glob("traceview*.py"))
    for stem, allowed in ALLOWED.items():
        found = imports(VIEW / f"{stem}.py")
        ours = {name for name in found if name.split(".")[0] in {"actors", "messages", "grasp"}}
        assert ours == allowed, stem
        foreign = {name.split(".")[0] for name in found - ours} - set(sys.stdlib_module_names)
        assert foreign <= {"__future__"}, stem
    stdlib_only = ("trace/format.py", "names.py", "urls.py")
    for module in (ROOT / "actors" / name for name in stdlib_only):
        assert {name.split(".")[0] for name in imports(module)} <= set(sys.stdlib_module_names) | {
            "__future__"
        }


def test_running_the_viewer_loads_no_actor_runtime():
    """Importing the command line pulls in nothing of pykka, gevent, messages or grasp, so
    the viewer runs on any Python 3.11 where a trace file ends up."""
    probe = (
        "import sys, actors.trace.view.__main__; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in {'pykka', 'gevent', 'messages', 'grasp'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


PROBE = """<script>
function shown() {
  return ["diagram", "diagram-all"].map(function (id) {
    return id + "=" + Math.round(document.getElementById(id).getBoundingClientRect().height);
  }).join(" ");
}
var before = shown();
document.querySelector('label[for="all-ticks"]').click();
var after = shown();
document.querySelector('label[for="all-ticks"]').click();
document.title = before + " | " + after + " | " + shown();
</script>"""


@pytest.mark.slow
@needs_chromium
def test_s13_3_the_checkbox_switches_between_folded_and_all_ticks_in_a_browser(tmp_path):
    """Chromium lays the page out; a probe appended to a copy clicks the label as a user
    would and reports which diagram has a height (the hidden one has none)."""
    page = render(tmp_path, TRACES / "e2e_backoff.jsonl")
    heights = {
        svg_id: re.search(rf'<svg id="{svg_id}"[^>]* height="(\d+)"', page).group(1)
        for svg_id in ("diagram", "diagram-all")
    }
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = run_chromium(tmp_path / "profile", probe.as_uri(), "--dump-dom", window=(1400, 900))
    title = html.unescape(re.search(r"<title>(.*?)</title>", done.stdout, re.S).group(1))
    folded = f"diagram={heights['diagram']} diagram-all=0"
    complete = f"diagram=0 diagram-all={heights['diagram-all']}"
    assert title == f"{folded} | {complete} | {folded}"
