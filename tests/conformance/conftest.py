"""Relays for the conformance suite, started once per run by their own CLI (slow tier).

``grasp``: the defaults, as an operator starts it (GRASP-06 on, no curation, the default
connection rate limit). ``curated``: the curation knobs on (a denied identifier, a banned key, a
low rate limit, an acceptance-criteria text of its own) and GRASP-06 off.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.support import Grasp
from tests.support.nip34 import Key
from tests.support.relay import RelayProcess

#: The banned key of the curated relay (L18) and its denied identifier (L11).
BANNED = Key()
DENIED = "denied-repo"
CURATED_RATE = 5
CRITERIA = "Repositories of the conformance suite only."


@pytest.fixture(scope="package")
def grasp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grasp]:
    process = RelayProcess(tmp_path_factory.mktemp("grasp") / "data").start()
    try:
        yield Grasp(process)
    finally:
        process.stop()


@pytest.fixture(scope="package")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grasp]:
    process = RelayProcess(
        tmp_path_factory.mktemp("curated") / "data",
        "--repo-deny",
        DENIED,
        "--deny-pubkey",
        BANNED.pubkey,
        "--event-rate-limit",
        str(CURATED_RATE),
        "--repo-acceptance-criteria",
        CRITERIA,
        "--no-grasp06",
    ).start()
    try:
        yield Grasp(process)
    finally:
        process.stop()
