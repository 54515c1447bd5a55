"""S12: every option as flag and env var, the S12 defaults, precedence and one-line errors."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from grasp.relay.config import GIB, OPTIONS, Config, ConfigError, build_parser, parse_config

# The S12 table (plus the S10.1 limits and --log-level), written out independently of OPTIONS.
S12_TABLE = {
    "sync_loop_interval_secs": ("--sync-loop-interval-ms", "GRASP_SYNC_LOOP_INTERVAL_MS", 1.0),
    "sync_domain_concurrent": ("--sync-domain-concurrent", "GRASP_SYNC_DOMAIN_CONCURRENT", 5),
    "sync_domain_rate_limit": ("--sync-domain-rate-limit", "GRASP_SYNC_DOMAIN_RATE_LIMIT", 30),
    "sync_default_delay_secs": ("--sync-default-delay-secs", "GRASP_SYNC_DEFAULT_DELAY_SECS", 180),
    "sync_immediate_delay_secs": (
        "--sync-immediate-delay-ms",
        "GRASP_SYNC_IMMEDIATE_DELAY_MS",
        0.5,
    ),
    "host": ("--host", "GRASP_HOST", "127.0.0.1"),
    "port": ("--port", "GRASP_PORT", 7777),
    "domain": ("--domain", "GRASP_DOMAIN", None),
    "data_dir": ("--data-dir", "GRASP_DATA_DIR", Path("grasp-data")),
    "sync_sources": ("--sync-source", "GRASP_SYNC_SOURCES", ()),
    "allow_private_fetch": ("--allow-private-fetch", "GRASP_ALLOW_PRIVATE_FETCH", False),
    "fetch_timeout_secs": ("--fetch-timeout-secs", "GRASP_FETCH_TIMEOUT_SECS", 120),
    "fetch_read_timeout_secs": ("--fetch-read-timeout-secs", "GRASP_FETCH_READ_TIMEOUT_SECS", 30),
    "fetch_max_bytes": ("--fetch-max-bytes", "GRASP_FETCH_MAX_BYTES", GIB),
    "purgatory_expiry_secs": ("--purgatory-expiry-secs", "GRASP_PURGATORY_EXPIRY_SECS", 1800),
    "trace": ("--trace", "GRASP_TRACE", None),
    # benchmark knobs beyond the S12 table (docs/configuration.rst)
    "sync_rate_window_secs": ("--sync-rate-window-secs", "GRASP_SYNC_RATE_WINDOW_SECS", 60),
    "sync_precise_wakeups": ("--sync-precise-wakeups", "GRASP_SYNC_PRECISE_WAKEUPS", True),
    "sync_backoff_scale": ("--sync-backoff-scale", "GRASP_SYNC_BACKOFF_SCALE", 1.0),
    "max_message_bytes": ("--max-message-bytes", "GRASP_MAX_MESSAGE_BYTES", 512 * 1024),
    "max_subscriptions": ("--max-subscriptions", "GRASP_MAX_SUBSCRIPTIONS", 20),
    "max_limit": ("--max-limit", "GRASP_MAX_LIMIT", 500),
    "log_level": ("--log-level", "GRASP_LOG_LEVEL", "INFO"),
    # NIP-11 identity, curation and GRASP-06 (S15.2, S15.5, S16.1)
    "relay_name": ("--relay-name", "GRASP_RELAY_NAME", "grasp-relay"),
    "relay_description": ("--relay-description", "GRASP_RELAY_DESCRIPTION", None),
    "relay_contact": ("--relay-contact", "GRASP_RELAY_CONTACT", None),
    "relay_icon": ("--relay-icon", "GRASP_RELAY_ICON", None),
    "repo_acceptance_criteria": (
        "--repo-acceptance-criteria",
        "GRASP_REPO_ACCEPTANCE_CRITERIA",
        None,
    ),
    "repo_allow": ("--repo-allow", "GRASP_REPO_ALLOW", ()),
    "repo_deny": ("--repo-deny", "GRASP_REPO_DENY", ()),
    "deny_pubkeys": ("--deny-pubkey", "GRASP_DENY_PUBKEYS", ()),
    "event_rate_limit": ("--event-rate-limit", "GRASP_EVENT_RATE_LIMIT", 60),
    "grasp06": ("--grasp06", "GRASP_GRASP06", True),
    # S14.1: the ref advertisement's own caps
    "fetch_max_advertisement_bytes": (
        "--fetch-max-advertisement-bytes",
        "GRASP_FETCH_MAX_ADVERTISEMENT_BYTES",
        32 * 1024 * 1024,
    ),
    "fetch_max_refs": ("--fetch-max-refs", "GRASP_FETCH_MAX_REFS", 500_000),
    # sync history and public URL scheme (S18.1, S10.4 answers)
    "sync_history_attempts": ("--sync-history-attempts", "GRASP_SYNC_HISTORY_ATTEMPTS", 20),
    "sync_history_identifiers": (
        "--sync-history-identifiers",
        "GRASP_SYNC_HISTORY_IDENTIFIERS",
        1000,
    ),
    "public_url_scheme": ("--public-url-scheme", "GRASP_PUBLIC_URL_SCHEME", None),
    # S1.4, S14.3 (issue 12)
    "maintenance_interval_secs": (
        "--maintenance-interval-secs",
        "GRASP_MAINTENANCE_INTERVAL_SECS",
        60,
    ),
    "placeholder_max_bytes": (
        "--placeholder-max-bytes",
        "GRASP_PLACEHOLDER_MAX_BYTES",
        32 * 1024 * 1024,
    ),
    "placeholder_max_per_repo": (
        "--placeholder-max-per-repo",
        "GRASP_PLACEHOLDER_MAX_PER_REPO",
        20,
    ),
    "database": ("--database", "GRASP_DATABASE", None),  # S19.1
    # NIP-77 served and GRASP-05 archive (S17.3, S17.5; issue 15)
    "negentropy_max_sessions": (
        "--negentropy-max-sessions",
        "GRASP_NEGENTROPY_MAX_SESSIONS",
        8,
    ),
    "negentropy_max_records": (
        "--negentropy-max-records",
        "GRASP_NEGENTROPY_MAX_RECORDS",
        100_000,
    ),
    "negentropy_frame_size_limit": (
        "--negentropy-frame-size-limit",
        "GRASP_NEGENTROPY_FRAME_SIZE_LIMIT",
        60_000,
    ),
    "archive": ("--archive", "GRASP_ARCHIVE", ()),
    "archive_all": ("--archive-all", "GRASP_ARCHIVE_ALL", False),
    "bootstrap_relays": ("--bootstrap-relay", "GRASP_BOOTSTRAP_RELAYS", ()),  # S17.1
    "discover_relays": ("--discover-relays", "GRASP_DISCOVER_RELAYS", True),
    "peer_reconcile_interval_secs": (
        "--peer-reconcile-interval",
        "GRASP_PEER_RECONCILE_INTERVAL",
        86400.0,
    ),
    # issue 16: what the machine sustains, not the actors' memory bound of 256
    "sync_max_running": ("--sync-max-running", "GRASP_SYNC_MAX_RUNNING", 8 * (os.cpu_count() or 1)),
    "sync_adaptive_running": ("--sync-adaptive-running", "GRASP_SYNC_ADAPTIVE_RUNNING", False),
}


def test_s12_defaults_with_no_flags_and_no_env():
    config = parse_config([], {})
    assert {name: getattr(config, name) for name in S12_TABLE} == {
        name: default for name, (_, _, default) in S12_TABLE.items()
    }
    assert config.public_domain == "127.0.0.1:7777"


def test_s12_every_config_field_has_exactly_the_documented_flag_and_env():
    assert {f.name for f in dataclasses.fields(Config)} == set(S12_TABLE)
    assert {o.field: (o.flag, o.env) for o in OPTIONS} == {
        name: (flag, env) for name, (flag, env, _) in S12_TABLE.items()
    }


@pytest.mark.parametrize(
    "field, raw, expected",
    [
        ("sync_loop_interval_secs", "250", 0.25),  # milliseconds on the flag, seconds inside
        ("sync_domain_concurrent", "2", 2),
        ("sync_domain_rate_limit", "7", 7),
        ("sync_default_delay_secs", "0.5", 0.5),
        ("sync_immediate_delay_secs", "0", 0.0),
        ("host", "::1", "::1"),
        ("port", "0", 0),
        ("domain", "Relay.Example.com:8443", "relay.example.com:8443"),
        ("data_dir", "/srv/grasp", Path("/srv/grasp")),
        ("fetch_timeout_secs", "9", 9.0),
        ("fetch_read_timeout_secs", "3.5", 3.5),
        ("fetch_max_bytes", "64MiB", 64 * 1024 * 1024),
        ("purgatory_expiry_secs", "60", 60.0),
        ("trace", "trace.jsonl", Path("trace.jsonl")),
        ("max_message_bytes", "1000", 1000),
        ("max_subscriptions", "3", 3),
        ("max_limit", "10", 10),
        ("log_level", "debug", "DEBUG"),
        ("fetch_max_advertisement_bytes", "4MiB", 4 * 1024 * 1024),
        ("fetch_max_refs", "1000", 1000),
    ],
)
def test_s12_each_value_option_from_flag_and_from_env(field, raw, expected):
    flag, env, _ = S12_TABLE[field]
    assert getattr(parse_config([flag, raw], {}), field) == expected
    assert getattr(parse_config([], {env: raw}), field) == expected


def test_s12_flag_wins_over_env():
    config = parse_config(["--port", "9000"], {"GRASP_PORT": "8000", "GRASP_HOST": "0.0.0.0"})
    assert (config.host, config.port) == ("0.0.0.0", 9000)


def test_s12_sync_sources_repeatable_flag_or_comma_separated_env():
    assert parse_config(
        ["--sync-source", "ws://a.example", "--sync-source", "wss://b.example/r"], {}
    ).sync_sources == ("ws://a.example", "wss://b.example/r")
    env = {"GRASP_SYNC_SOURCES": "ws://a.example, wss://b.example"}
    assert parse_config([], env).sync_sources == ("ws://a.example", "wss://b.example")
    assert parse_config(["--sync-source", "ws://c.example"], env).sync_sources == (
        "ws://c.example",
    )


@pytest.mark.parametrize(
    "raw, expected", [("1", True), ("yes", True), ("on", True), ("0", False), ("off", False)]
)
def test_s12_allow_private_fetch_switch_and_env(raw, expected):
    assert parse_config([], {"GRASP_ALLOW_PRIVATE_FETCH": raw}).allow_private_fetch is expected
    assert parse_config(["--allow-private-fetch"], {}).allow_private_fetch is True
    assert (
        parse_config(
            ["--no-allow-private-fetch"], {"GRASP_ALLOW_PRIVATE_FETCH": "1"}
        ).allow_private_fetch
        is False
    )


@pytest.mark.parametrize(
    "argv, env, fragment",
    [
        (["--port", "http"], {}, "argument --port: 'http' is not an integer"),
        (["--port", "65536"], {}, "must be between 0 and 65535"),
        (["--sync-domain-concurrent", "0"], {}, "must be at least 1"),
        (["--sync-default-delay-secs", "-1"], {}, "must be a finite number >= 0"),
        (["--fetch-timeout-secs", "0"], {}, "must be greater than 0"),
        (["--fetch-max-bytes", "lots"], {}, "is not a size"),
        (["--domain", "https://example.com/x"], {}, "is not an authority"),
        (["--sync-source", "http://example.com"], {}, "is not a ws:// or wss:// relay URL"),
        (["--log-level", "chatty"], {}, "is not a log level"),
        (["--frobnicate"], {}, "unrecognized arguments: --frobnicate"),
        ([], {"GRASP_PORT": "x"}, "environment variable GRASP_PORT='x': 'x' is not an integer"),
        ([], {"GRASP_ALLOW_PRIVATE_FETCH": "maybe"}, "GRASP_ALLOW_PRIVATE_FETCH='maybe'"),
        ([], {"GRASP_SYNC_SOURCES": "ws://ok.example,ftp://bad"}, "GRASP_SYNC_SOURCES"),
    ],
)
def test_s12_bad_values_raise_one_line_config_error(argv, env, fragment):
    with pytest.raises(ConfigError) as info:
        parse_config(argv, env)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_s12_help_names_every_flag_env_var_and_default():
    text = " ".join(build_parser().format_help().split())  # undo line wrapping
    for flag, env, _ in S12_TABLE.values():
        assert flag in text and f"env: {env};" in text
    for shown in (
        "default: 1000]",
        "default: 7777]",
        "default: <host>:<port>]",
        "default: ./grasp-data]",
        "default: 1GiB]",
        "default: 512KiB]",
        "default: off]",
        "default: INFO]",
    ):
        assert shown in text


def test_public_domain_follows_the_bound_port_unless_configured():
    config = parse_config(["--port", "0"], {})
    assert config.with_bound_port(43210).public_domain == "127.0.0.1:43210"
    assert parse_config(["--host", "::1"], {}).public_domain == "[::1]:7777"
    fixed = parse_config(["--domain", "git.example.org"], {})
    assert fixed.with_bound_port(1234).public_domain == "git.example.org"


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().port = 1  # type: ignore[misc]


def test_docs_configuration_lists_every_option_with_its_env_and_default():
    """docs/configuration.rst stays the complete table (S12)."""
    from grasp.relay.config import default_text

    text = (Path(__file__).resolve().parents[2] / "docs" / "configuration.rst").read_text()
    rows = text.split("   * - ")
    for option in OPTIONS:
        # the flag as a whole word: ``--archive`` must not also find ``--archive-all``
        [row] = [r for r in rows if re.match(rf"``{re.escape(option.flag)}[` ]", r)]
        assert f"``{option.env}``" in row and f"- {default_text(option)}\n" in row, option.flag


def test_s14_1_advertisement_caps_reach_the_fetch_limits():
    from grasp.relay.app import fetch_settings

    argv = ["--fetch-max-advertisement-bytes", "1MiB", "--fetch-max-refs", "7"]
    _, limits = fetch_settings(parse_config(argv, {}))
    assert (limits.max_advertisement_bytes, limits.max_refs) == (1 << 20, 7)
    _, defaults = fetch_settings(parse_config([], {}))
    assert (defaults.max_advertisement_bytes, defaults.max_refs) == (32 << 20, 500_000)


def test_public_scheme_is_http_unless_a_public_domain_or_the_option_says_otherwise():
    """S10.4 answers name URLs in the scheme clients reach the relay by."""
    assert parse_config([], {}).public_scheme == "http"
    assert parse_config(["--domain", "relay.example.com"], {}).public_scheme == "https"
    explicit = ["--domain", "relay.example.com", "--public-url-scheme", "HTTP"]
    assert parse_config(explicit, {}).public_scheme == "http"
    assert parse_config([], {"GRASP_PUBLIC_URL_SCHEME": "https"}).public_scheme == "https"
    with pytest.raises(ConfigError, match="not a URL scheme"):
        parse_config(["--public-url-scheme", "ftp"], {})
