"""Start-up warnings for sync sources the fetch policy would refuse (S18.2, S3.4)."""

from __future__ import annotations

import pytest

from grasp.git import FetchPolicy
from grasp.relay.fetch_checks import unfetchable_sources

STRICT, OPEN = FetchPolicy(), FetchPolicy(allow_private=True)


def fake_dns(table):
    def resolve(host, port):
        if host not in table:
            raise OSError(f"{host} does not resolve")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    ("source", "address"),
    [
        ("ws://127.0.0.1:7778", "127.0.0.1 is a loopback address"),
        ("wss://10.0.0.5/", "10.0.0.5 is a private address"),
        ("ws://peer.lan:7777", "192.168.1.9 is a private address"),
        ("ws://[::1]:7777", "::1 is a loopback address"),
    ],
)
def test_a_private_sync_source_is_a_warning_that_names_the_flag(source, address):
    dns = fake_dns({"peer.lan": ["192.168.1.9"]})
    [warning] = unfetchable_sources([source], STRICT, resolve=dns)
    assert warning.startswith(f"sync source {source}: ") and address in warning
    assert warning.endswith("start with --allow-private-fetch to allow it")
    assert unfetchable_sources([source], OPEN, resolve=dns) == []


def test_public_unresolvable_and_odd_sources_say_nothing():
    dns = fake_dns({"relay.example.com": ["93.184.216.34"]})
    sources = ["wss://relay.example.com", "wss://nowhere.invalid", "http://not-a-relay", "ws://"]
    assert unfetchable_sources(sources, STRICT, resolve=dns) == []
