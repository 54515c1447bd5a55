"""``grasp-relay`` as a command: exit statuses, one-line errors, --help, ready line (S12)."""

from __future__ import annotations

import signal
import socket
import subprocess

import pytest

from grasp.relay.config import OPTIONS
from tests.support.relay import RELAY_BIN, RelayProcess, _clean_env


def run_cli(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(RELAY_BIN), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=_clean_env(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("grasp-relay: error: ")
    return lines[0]


@pytest.mark.parametrize(
    "args, env, fragment",
    [
        (["--port", "seventy"], None, "argument --port: 'seventy' is not an integer"),
        (["--no-such-option"], None, "unrecognized arguments: --no-such-option"),
        (["--max-subscriptions", "0"], None, "argument --max-subscriptions: 0 is out of range"),
        (
            [],
            {"GRASP_FETCH_MAX_BYTES": "huge"},
            "environment variable GRASP_FETCH_MAX_BYTES='huge'",
        ),
    ],
)
def test_s12_bad_option_is_one_line_and_exit_2(tmp_path, args, env, fragment):
    result = run_cli("--data-dir", str(tmp_path / "d"), *args, env=env)
    assert result.returncode == 2
    assert fragment in one_error_line(result)
    assert not (tmp_path / "d").exists()  # nothing was created for a refused configuration


def test_unusable_data_dir_is_one_line_and_exit_1(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli("--port", "0", "--data-dir", str(blocker / "data"))
    assert result.returncode == 1
    assert f"data directory '{blocker / 'data'}' is not usable" in one_error_line(result)


def test_corrupt_event_store_is_one_line_and_exit_1(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "events.sqlite3").write_bytes(b"this is not an sqlite database" * 100)
    result = run_cli("--port", "0", "--data-dir", str(data))
    assert result.returncode == 1
    assert "cannot open event store" in one_error_line(result)


def test_busy_port_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in one_error_line(result)


def test_help_documents_every_option_with_env_and_default():
    result = run_cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for option in OPTIONS:
        assert option.flag in text
        assert f"env: {option.env}; default:" in text


@pytest.mark.sqlite_only  # reads events.sqlite3 itself
def test_defaults_work_out_of_the_box_with_data_in_grasp_data(tmp_path):
    """No --data-dir: the SQLite store appears
    under ./grasp-data of the working directory (S11.1)."""
    with RelayProcess(None, cwd=tmp_path) as process:
        assert process.data_dir == tmp_path / "grasp-data"
        assert (tmp_path / "grasp-data" / "events.sqlite3").is_file()
        assert process.http_url == f"http://127.0.0.1:{process.port}"
    assert process.returncode == 0


def test_sigint_also_stops_the_relay_cleanly(tmp_path):
    process = RelayProcess(tmp_path / "data").start()
    try:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", process.port), timeout=1)
    finally:
        process.stop()
