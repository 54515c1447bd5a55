"""Nodes of a cluster for process-level tests (S19.2): relay processes started by the CLI with
the same ``--database``, ``--data-dir`` and ``--domain``, each on its own port (``--port 0``)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import Event
from tests.support.nip34 import Key
from tests.support.relay import RelayProcess

DOMAIN = "grasp.test"
HELD = "purgatory: won't be served until git data arrives"


def node_args(database: str, *extra: str) -> tuple[str, ...]:
    return (
        "--database",
        database,
        "--domain",
        DOMAIN,
        "--public-url-scheme",
        "http",
        "--allow-private-fetch",
        *extra,
    )


@pytest.fixture
def cluster(tmp_path: Path, postgres_database: str) -> Iterator[Callable[..., list[RelayProcess]]]:
    """``cluster(n, *args)`` starts ``n`` nodes on one database and one data directory; every
    node is stopped at teardown, also when the test failed."""
    started: list[RelayProcess] = []
    shared = tmp_path / "shared-data"

    def start(count: int, *args: str) -> list[RelayProcess]:
        nodes = []
        for _ in range(count):
            node = RelayProcess(shared, *node_args(postgres_database, *args))
            started.append(node)
            nodes.append(node.start())
        return nodes

    yield start
    for node in started:
        node.stop()


def announcement(key: Key, identifier: str) -> Event:
    npub = npub_encode(key.pubkey)
    return key.announcement(
        identifier, clone=[f"http://{DOMAIN}/{npub}/{identifier}.git"], relays=[f"ws://{DOMAIN}"]
    )


def git_url(node: RelayProcess, key: Key, identifier: str) -> str:
    return f"{node.http_url}/{npub_encode(key.pubkey)}/{identifier}.git"


def push(source: Path, url: str, *refspecs: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "--git-dir", str(source), "push", url, *refspecs],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
