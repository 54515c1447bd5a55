"""``scripts/run`` and friends: a fresh checkout, and being run from another directory.

On a fresh checkout ``scripts/run`` creates .venv, installs quietly (nothing but real errors on
the terminal) and the relay answers NIP-11. Run from elsewhere, the scripts keep the venv in the
checkout but leave the working directory alone, so ``--data-dir reldata``, the default
``./grasp-data`` and test paths are the caller's (issue 14, item 5).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.relay import RelayProcess

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 7777
#: A line of the relay's own logging (grasp.relay.config.configure_logging) or its ready line.
RELAY_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ |grasp-relay listening on )")


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
@pytest.mark.sqlite_only  # reads events.sqlite3 itself
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
        assert json.loads(curl.stdout)["supported_nips"] == [1, 11, 34, 77]
        assert (checkout / ".venv" / "bin" / "grasp-relay").exists()
        assert (checkout / "grasp-data" / "events.sqlite3").is_file()
    assert relay.returncode == 0
    # A quiet first run: the install printed nothing (its output is in .venv/install.log).
    strays = [line for line in relay.log.splitlines() if line and not RELAY_LINE.match(line)]
    assert not strays, "the first run printed more than the relay's log:\n" + "\n".join(strays)
    assert (checkout / ".venv" / "install.log").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, args, data",
    [
        ("run", ("--data-dir", "reldata", "--trace", "trace.jsonl"), "reldata"),
        ("supervise", (), "grasp-data"),
    ],
)
@pytest.mark.sqlite_only  # reads events.sqlite3 itself
def test_scripts_run_from_another_directory_keep_relative_paths_there(tmp_path, script, args, data):
    """--data-dir reldata, the default ./grasp-data and --trace FILE land in the caller's
    directory, not in the checkout; the venv used is the checkout's."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    in_checkout = {path: path.exists() for path in (ROOT / "reldata", ROOT / "trace.jsonl")}
    command = ["bash", str(ROOT / "scripts" / script)]
    relay = RelayProcess(
        None, *args, "--port", "0", command=command, cwd=elsewhere, port=None, start_timeout=300
    )
    with relay:
        assert (elsewhere / data / "events.sqlite3").is_file()
        assert f"data {elsewhere / data}" in relay.log  # the relay's start line, resolved
    assert relay.returncode == 0
    assert {path: path.exists() for path in in_checkout} == in_checkout  # nothing new there
    if "--trace" in args:
        assert (elsewhere / "trace.jsonl").stat().st_size > 0


@pytest.mark.slow
def test_scripts_test_from_another_directory_takes_paths_relative_to_it(tmp_path):
    """A relative test path given to scripts/test means the caller's file; pytest still uses
    the checkout's configuration (its markers, so --strict-markers accepts ``slow``)."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "test_here.py").write_text(
        "import pytest\n\n@pytest.mark.slow\ndef test_here():\n    assert True\n"
    )
    ran = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "test"),
            "-q",
            "-p",
            "no:cacheprovider",
            "mine/test_here.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "1 passed" in ran.stdout, ran.stdout
