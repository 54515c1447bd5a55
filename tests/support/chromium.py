"""Headless Chromium for the browser tests (Debian's ``chromium``; ``.ci/run`` installs it).

One way to start it, with the flags this closed sandbox needs (no background networking, no
component updates: without them Chromium keeps trying hosts it cannot reach), so every browser
test behaves the same and a missing browser skips with one reason.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: ``pytestmark = needs_chromium`` (or as a decorator) skips a test where the browser is missing.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not found (Debian: apt-get install -y chromium; .ci/run installs it)",
)


def run_chromium(
    profile: Path,
    url: str,
    *action: str,
    window: tuple[int, int] = (1280, 900),
    timeout: float = 90,
) -> subprocess.CompletedProcess[str]:
    """One headless run on a fresh ``profile`` directory; ``action`` is e.g. ``--dump-dom`` or
    ``--screenshot=PATH`` (and ``--virtual-time-budget=MS`` to let page scripts run first)."""
    assert CHROMIUM is not None, "use needs_chromium"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={window[0]},{window[1]}",
        *action,
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"chromium failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done
