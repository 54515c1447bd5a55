"""``--database`` / ``GRASP_DATABASE`` (S19.1): parsing, one-line errors, a relay on PostgreSQL.

The process tests use the throw-away server of ``tests/support/postgres.py``; they skip, naming
the Debian package, only when its binaries are absent.
"""

from __future__ import annotations

import socket

import pytest

from grasp.relay.config import ConfigError, parse_config
from tests.relay.test_cli import one_error_line, run_cli
from tests.support.relay import RelayClient, RelayProcess, accepted_repository

SECRET = "7f" * 32


def test_s19_1_default_is_the_sqlite_file_in_the_data_dir():
    config = parse_config([], {})
    assert config.database is None and not config.clustered


def test_s19_1_flag_and_env_give_the_url_and_the_flag_wins():
    url = "postgresql://grasp:pw@db.internal:5432/grasp"
    assert parse_config(["--database", url], {}).database == url
    assert parse_config([], {"GRASP_DATABASE": url}).clustered
    other = "postgres://a@b/c"
    assert parse_config(["--database", other], {"GRASP_DATABASE": url}).database == other
    assert not parse_config(["--database", "/srv/events.sqlite3"], {}).clustered


def test_s19_1_scheme_is_normalised_for_the_store_factory():
    assert parse_config(["--database", "PostgreSQL://h/db"], {}).database == "postgresql://h/db"


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("mysql://u:hunter22@h/db", "unsupported database URL scheme 'mysql'"),
        ("postgresql://u:hunter22@/db", "names no host"),
        ("postgresql://u:hunter22@h", "names no database"),
        ("postgresql://u:hunter22@h:99999/db", "has a bad port"),
    ],
)
def test_s19_1_malformed_url_is_a_config_error_without_the_password(url, fragment):
    with pytest.raises(ConfigError, match=fragment) as caught:
        parse_config(["--database", url], {})
    assert "hunter22" not in str(caught.value) and "u:***@" in str(caught.value)


def test_s19_1_malformed_url_exits_2_with_one_line(tmp_path):
    result = run_cli("--data-dir", str(tmp_path / "d"), "--database", "postgresql://u:pw9@h")
    assert result.returncode == 2
    assert "names no database" in one_error_line(result)
    assert "pw9" not in result.stderr


def test_s19_1_unreachable_server_exits_1_with_one_line_and_no_password(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on: connection refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://grasp:s3cretpass@127.0.0.1:{port}/grasp"
    result = run_cli("--port", "0", "--data-dir", str(tmp_path / "d"), "--database", url)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "cannot open event store postgresql://grasp:***@127.0.0.1" in line
    assert "s3cretpass" not in result.stderr


def test_s19_1_wrong_password_exits_1_without_the_password(tmp_path, postgres_server):
    url = postgres_server.dsn("postgres").replace(postgres_server.password, "wrong-pass-77")
    result = run_cli("--port", "0", "--data-dir", str(tmp_path / "d"), "--database", url)
    assert result.returncode == 1
    assert "password authentication failed" in one_error_line(result)
    assert "wrong-pass-77" not in result.stderr


def test_s19_1_events_live_in_postgresql_not_in_the_data_dir(tmp_path, postgres_database):
    """A relay on ``--database`` keeps its events there: a second relay with another data
    directory, same database, answers REQ with them; no SQLite file is made; the password is
    in no log line."""
    password = postgres_database.split(":")[2].split("@")[0]
    first = RelayProcess(tmp_path / "a", "--database", postgres_database, "--log-level", "DEBUG")
    with first:
        client = RelayClient(first.ws_url)
        repo = accepted_repository(client, f"127.0.0.1:{first.port}", SECRET)
        client.close()
        log = first.log
    assert not (tmp_path / "a" / "events.sqlite3").exists()
    assert password not in log and "grasp:***@127.0.0.1" in log
    with RelayProcess(tmp_path / "b", "--database", postgres_database) as second:
        client = RelayClient(second.ws_url)
        assert [e["id"] for e in client.req("r", {"ids": [repo.id]})] == [repo.id]
        client.close()
