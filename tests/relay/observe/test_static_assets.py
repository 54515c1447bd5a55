"""The status page's script and style are package data (S13): found by importlib.resources,
and shipped by a non-editable build, so an installed relay renders the same page as a checkout."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from grasp.relay.observe import status_page

ROOT = Path(__file__).resolve().parents[3]
ASSETS = ("status.css", "status.js")


def test_s13_assets_are_found_by_importlib_resources_and_inlined_as_they_are():
    for name in ASSETS:
        assert status_page.STATIC.joinpath(name).is_file(), name
    css = status_page.STATIC.joinpath("status.css").read_text(encoding="utf-8")
    js = status_page.STATIC.joinpath("status.js").read_text(encoding="utf-8")
    assert "#releases, #sources" in css and "root.GraspStatus" in js
    assert (status_page.STYLE, status_page.SCRIPT) == ("\n" + css, "\n" + js)


def test_s13_csp_hashes_are_those_of_the_files_inlined_blocks():
    """The CSP admits the inline blocks by hash: the hash must follow the file's bytes."""
    for name, kind in (("status.js", "script-src"), ("status.css", "style-src")):
        block = "\n" + status_page.STATIC.joinpath(name).read_text(encoding="utf-8")
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"{kind} 'sha256-{digest}'" in status_page.CONTENT_SECURITY_POLICY


def test_s13_a_non_editable_build_ships_the_assets_and_renders_the_page(tmp_path):
    """setuptools' build_py (the step a wheel is made from) copies the declared package data;
    an interpreter that sees only that build (no site-packages, no checkout) loads the assets
    through importlib.resources and renders the same page as this checkout."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("messages", "actors", "grasp"):
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    for name in ("setup.cfg", "setup.py", "README.rst"):
        shutil.copy2(ROOT / name, source / name)
    built = tmp_path / "lib"
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(built)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ASSETS:
        assert (built / "grasp" / "relay" / "observe" / "static" / name).is_file(), name

    snapshot = (
        '{"generated_at": 1700000000.5, "sync": {"error": "down"}, "history": {"error": "down"},'
        ' "releases": [],'
        ' "purgatory": {"counts": {}, "total": 0}, "sync_sources": {"connections": []}}'
    )
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(built)!r})\n"
        "from grasp.relay.observe import status_page as page\n"
        "print(page.__file__)\n"
        f"print(page.render_page(json.loads({snapshot!r}), json_url='/status.json',"
        " refresh_ms=2000, title='t'), end='')\n"
    )
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr[-3000:]
    where, rendered = run.stdout.split("\n", 1)
    assert Path(where).is_relative_to(built)
    expected = status_page.render_page(
        json.loads(snapshot), json_url="/status.json", refresh_ms=2000, title="t"
    )
    assert rendered == expected
