"""docs/deploy/grasp-relay.service does what docs/deployment.rst says, run the way systemd would.

No systemd is needed: the unit's ``Environment=``, ``WorkingDirectory=`` and ``ExecStart=`` are
read from the documented file (the install paths and the port substituted) and run as a process;
then the signals the unit relies on are sent. ``KillSignal=SIGTERM`` must end the relay with 0
(so ``Restart=on-failure`` leaves it stopped) after persisting purgatory (S9.1); ``SIGUSR1``
dumps stacks and the sync queue; a bad environment value exits 2, the status
``RestartPreventExitStatus=`` names. Where ``systemd-analyze`` exists it checks the file too.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support.relay import RelayProcess, RelayStartError

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "docs" / "deploy" / "grasp-relay.service"
INSTALL, DATA, CACHE = "/opt/grasp-relay", "/var/lib/grasp-relay", "/var/cache/grasp-relay"


def service_section(text: str) -> dict[str, list[str]]:
    """``[Service]`` as key -> values (repeated keys such as Environment= keep every value)."""
    section: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line
            continue
        if current == "[Service]":
            key, _, value = line.partition("=")
            section.setdefault(key, []).append(value)
    return section


def localised(tmp_path: Path) -> str:
    """The unit with the checkout for /opt/grasp-relay and temporary data and cache dirs."""
    text = UNIT.read_text()
    for placeholder in (INSTALL, DATA, CACHE):
        assert placeholder in text, f"{placeholder} is no longer in {UNIT.name}"
    return (
        text.replace(INSTALL, str(ROOT))
        .replace(DATA, str(tmp_path / "data"))
        .replace(CACHE, str(tmp_path / "cache"))
    )


def unit_process(tmp_path: Path, **overrides: str) -> RelayProcess:
    """The unit's ExecStart in its WorkingDirectory with its Environment (plus ``overrides``)."""
    service = service_section(localised(tmp_path))
    env = dict(value.split("=", 1) for value in service["Environment"])
    env["GRASP_PORT"] = "0"
    env.update(overrides)
    for directory in (env["GRASP_DATA_DIR"], env["TMPDIR"]):  # StateDirectory=, CacheDirectory=
        Path(directory).mkdir(parents=True, exist_ok=True)
    [command] = service["ExecStart"]
    [workdir] = service["WorkingDirectory"]
    return RelayProcess(
        None, command=command.split(), cwd=Path(workdir), env=env, port=None, start_timeout=300
    )


def test_unit_declares_the_documented_service_semantics():
    service = service_section(UNIT.read_text())
    assert service["ExecStart"] == [f"{INSTALL}/scripts/supervise"]
    assert service["KillSignal"] == ["SIGTERM"] and service["KillMode"] == ["mixed"]
    assert service["Restart"] == ["on-failure"] and service["RestartPreventExitStatus"] == ["2"]
    assert service["User"] == ["grasp"] and service["StateDirectory"] == ["grasp-relay"]
    env = dict(value.split("=", 1) for value in service["Environment"])
    assert env["GRASP_DATA_DIR"] == DATA and env["GRASP_HOST"] == "127.0.0.1"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is missing")
def test_systemd_analyze_accepts_the_unit(tmp_path):
    unit = tmp_path / "grasp-relay.service"
    unit.write_text(localised(tmp_path))
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    output = (checked.stdout + checked.stderr).splitlines()
    complaints = [line for line in output if unit.name in line]
    assert checked.returncode == 0 and not complaints, checked.stdout + checked.stderr


@pytest.mark.slow
@pytest.mark.sqlite_only  # reads events.sqlite3 itself
def test_the_units_command_serves_then_usr1_dumps_and_sigterm_stops_with_0(tmp_path):
    with unit_process(tmp_path) as relay:
        info = relay.nip11()
        assert info["supported_nips"] == [1, 11, 34, 77]
        assert (tmp_path / "data" / "events.sqlite3").is_file()
        assert f"domain relay.example.com, data {tmp_path / 'data'}" in relay.log
        relay.send_signal(signal.SIGUSR1)
        relay.wait_for_log("greenlets and stacks")
        relay.wait_for_log("sync queue: ")
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(30) == 0  # Restart=on-failure: a clean stop stays stopped
    # Nothing is saved at the stop (held events are in the database all along, S9.1); the final
    # heartbeat is what the next start measures the downtime from.
    assert not (tmp_path / "data" / "purgatory-state.json").exists()
    with sqlite3.connect(tmp_path / "data" / "events.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM node_heartbeats").fetchone()[0] == 1


@pytest.mark.slow
def test_a_bad_environment_value_exits_2_so_systemd_does_not_restart_it(tmp_path):
    relay = unit_process(tmp_path, GRASP_PORT="not-a-port")
    with pytest.raises(RelayStartError, match="exited"):
        relay.start()
    assert relay.returncode == 2
    assert "GRASP_PORT" in relay.log
