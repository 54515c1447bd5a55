"""docs/deploy/Caddyfile is valid Caddy configuration (where Caddy is installed).

Caddy is documented, not run behind a relay like nginx (tests/deploy/test_nginx.py): this
checks that Caddy itself adapts and validates the documented file, and that the routes keep
the order docs/deployment.rst relies on (the body limit, /metrics refused, then the proxy).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CADDYFILE = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "Caddyfile"


MISSING = "caddy is not installed (Debian package 'caddy')"


@pytest.mark.skipif(shutil.which("caddy") is None, reason=MISSING)
def test_caddy_validates_the_documented_caddyfile(tmp_path):
    adapted = subprocess.run(
        ["caddy", "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile", "--validate"],
        capture_output=True, text=True, timeout=60,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert adapted.returncode == 0, adapted.stderr
    server = json.loads(adapted.stdout)["apps"]["http"]["servers"]["srv0"]
    [site] = server["routes"]
    assert site["match"] == [{"host": ["relay.example.com"]}]
    routes = site["handle"][0]["routes"]
    handlers = [route["handle"][0]["handler"] for route in routes]
    assert handlers == ["request_body", "static_response", "reverse_proxy"]
    assert routes[0]["handle"][0]["max_size"] == 1 << 30  # the relay's own limit
    assert routes[1]["match"] == [{"path": ["/metrics", "/metrics/*"]}]
    assert routes[1]["handle"][0]["status_code"] == 403
    proxy = routes[2]["handle"][0]
    assert proxy["flush_interval"] == -1 and proxy["upstreams"] == [{"dial": "127.0.0.1:7777"}]
