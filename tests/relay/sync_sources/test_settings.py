"""SyncSourceSettings: the numbers every sync source shares (S10.7), checked once at start-up."""

from __future__ import annotations

import dataclasses

import pytest

from grasp.relay.config import KIB, Config
from grasp.relay.sync_sources.settings import SYNC_KINDS, SyncSourceSettings
from grasp.relay.sync_sources.source import SyncSource, SyncSources


def test_s10_7_defaults_are_the_spec_numbers():
    """S10.7: the NIP-34 kinds, 5 s backoff doubling to 5 min; S10.1: 512 KiB messages."""
    settings = SyncSourceSettings()
    assert (
        settings.kinds
        == SYNC_KINDS
        == (30617, 30618, 1617, 1618, 1619, 1621, 1630, 1631, 1632, 1633)
    )
    assert (settings.backoff_initial, settings.backoff_max) == (5.0, 300.0)
    assert settings.max_message_bytes == 512 * KIB


def test_settings_are_built_once_from_the_relay_config(tmp_path):
    """A synced event may be as large as one a client publishes (``--max-message-bytes``)."""
    config = Config(data_dir=tmp_path, max_message_bytes=64 * KIB)
    settings = SyncSourceSettings.from_config(config)
    assert settings == SyncSourceSettings(max_message_bytes=64 * KIB)


def test_settings_are_frozen_slotted_and_hashable():
    settings = SyncSourceSettings(kinds=[30617, 30618])  # a list is kept as a tuple
    assert settings.kinds == (30617, 30618)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.ping_interval = 1.0  # type: ignore[misc]
    assert not hasattr(settings, "__dict__")
    assert hash(settings) == hash(SyncSourceSettings(kinds=(30617, 30618)))


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("backoff_initial", 0, "backoff_initial must be a positive number of seconds, got 0"),
        ("ping_interval", -1.5, "ping_interval must be a positive number of seconds, got -1.5"),
        ("connect_timeout", float("inf"), "connect_timeout must be a positive number of seconds"),
        ("history_timeout", True, "history_timeout must be a positive number of seconds, got True"),
        ("backoff_max", 2.0, "backoff_max (2.0) is below backoff_initial (5.0)"),
        ("resume_overlap", -1, "resume_overlap must be whole seconds >= 0, got -1"),
        ("resume_overlap", 1.5, "resume_overlap must be whole seconds >= 0, got 1.5"),
        ("max_message_bytes", 0, "max_message_bytes must be a positive integer, got 0"),
        ("max_pages", "10", "max_pages must be a positive integer, got '10'"),
        ("kinds", (), "kinds must be event kinds 0..65535, got ()"),
        ("kinds", (30617, 70000), "kinds must be event kinds 0..65535, got (30617, 70000)"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(field, value, says):
    with pytest.raises(ValueError) as raised:
        SyncSourceSettings(**{field: value})
    assert says in str(raised.value)


def test_every_source_shares_the_one_settings_value():
    """SyncSources hands the same frozen value to each source; only url and the write policy
    are per source (duplicate URLs are synced once)."""
    settings = SyncSourceSettings(backoff_initial=1.0)

    def policy(event, source):  # never called: nothing is started
        raise AssertionError("not started")

    sources = SyncSources(
        ["ws://127.0.0.1:1/", "ws://127.0.0.1:2/", "ws://127.0.0.1:1/"], settings, policy
    )
    assert [s.url for s in sources] == ["ws://127.0.0.1:1/", "ws://127.0.0.1:2/"]
    assert all(s.settings is settings and s.write_policy is policy for s in sources)
    assert isinstance(sources.sources[0], SyncSource)
    assert [s.state for s in sources.status()] == ["stopped", "stopped"]
