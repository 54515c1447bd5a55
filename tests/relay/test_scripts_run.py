"""``scripts/run`` on a fresh checkout: creates .venv, installs, and the relay answers NIP-11."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.relay import RelayProcess

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 7777


def fresh_checkout(target: Path) -> Path:
    """The working tree as git would check it out (tracked and new files, nothing ignored)."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_scripts_run_brings_the_relay_up_on_a_fresh_checkout(tmp_path):
    checkout = fresh_checkout(tmp_path / "checkout")
    assert not (checkout / ".venv").exists()
    # The documented default is 127.0.0.1:7777; if something else holds it, use --port 0.
    args = () if port_is_free(DEFAULT_PORT) else ("--port", "0")
    relay = RelayProcess(
        None,
        *args,
        command=["bash", str(checkout / "scripts" / "run")],
        cwd=checkout,
        port=None,
        start_timeout=300,
    )
    with relay:
        if not args:
            assert relay.port == DEFAULT_PORT
        curl = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "10",
                "-H",
                "Accept: application/nostr+json",
                relay.http_url + "/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert curl.returncode == 0, curl.stderr
        assert json.loads(curl.stdout)["supported_nips"] == [1, 11, 34]
        assert (checkout / ".venv" / "bin" / "grasp-relay").exists()
        assert (checkout / "grasp-data" / "events.sqlite3").is_file()
    assert relay.returncode == 0
