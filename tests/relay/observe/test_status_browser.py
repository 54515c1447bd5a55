"""The ``/status`` page in a real browser (S13): headless Chromium loads it from a ``grasp-relay``
process whose sync queue, purgatory and domain table are not empty, runs the page's script (which
polls ``/status.json`` and re-renders every section), and the test reads what a person would
see: the DOM after the script ran, and a screenshot.

What makes the numbers live: a state event is held in purgatory (S1.2) for a commit that the
only other clone URL's server does not have. The relay's sync attempt contacts that server's
domain (so it appears in the domain table with one request in its rate window, S6.1) and fails;
the identifier stays queued with a long backoff (S4.1, scaled up so nothing changes while the
browser looks).

Chromium is Debian's ``chromium`` package; ``.ci/run`` installs it. Where it is missing, the test
is skipped and says why.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import urllib.request
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grasp.nostr.event import npub_encode
from tests.support.chromium import needs_chromium, run_chromium
from tests.support.gitrepo import RepoBuilder
from tests.support.gitserver import GitServer
from tests.support.nip34 import Key
from tests.support.relay import RelayClient, RelayProcess
from tests.support.wait import wait_for

D = "watched"
HOST = "127.0.0.2"
WINDOW = (1280, 900)

pytestmark = needs_chromium


def chromium(profile: Path, url: str, *action: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run; ``--virtual-time-budget`` lets the page's script fetch
    ``/status.json`` and render before the DOM is dumped or the screenshot taken."""
    return run_chromium(profile, url, "--virtual-time-budget=5000", *action, window=WINDOW)


class SectionText(HTMLParser):
    """Text content of the elements with the given ids, and their class attributes."""

    def __init__(self, ids: set[str]) -> None:
        super().__init__()
        self.wanted = ids
        self.text: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        self._open: list[tuple[str, int]] = []  # (id, depth at which it opened)
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._depth += 1
        attributes = dict(attrs)
        element_id = attributes.get("id")
        if element_id in self.wanted:
            self._open.append((element_id, self._depth))
            self.text.setdefault(element_id, "")
            self.classes[element_id] = attributes.get("class") or ""
        self.handle_data(" ")  # keep cells and headings apart in the flattened text

    def handle_endtag(self, tag: str) -> None:
        self.handle_data(" ")
        while self._open and self._open[-1][1] >= self._depth:
            self._open.pop()
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        for element_id, _ in self._open:
            self.text[element_id] += data


def flat(text: str) -> str:
    return " ".join(text.split())


def png_pixels_vary(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct scanlines) of a PNG, decoded with zlib alone."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    idat, offset = b"", 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"IDAT":
            idat += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    raw = zlib.decompress(idat)
    stride = len(raw) // height
    return width, height, len({raw[i * stride + 1 : (i + 1) * stride] for i in range(height)})


def held_state_with_a_failed_attempt(relay: RelayProcess, server: GitServer) -> None:
    """Announce D (the relay plus ``server``), hold a state whose commit ``server`` lacks, wait
    until the sync attempt against ``server`` ended."""
    RepoBuilder.create(server.root / f"{D}.git").commit(branch="main")
    elsewhere = RepoBuilder.create(server.root.parent / "elsewhere.git")  # never served
    missing = elsewhere.commit("only elsewhere", files={"unserved.txt": "not on the server\n"})
    owner = Key()
    authority = f"127.0.0.1:{relay.port}"
    own_url = f"http://{authority}/{npub_encode(owner.pubkey)}/{D}.git"
    client = RelayClient(relay.ws_url)
    try:
        ok = client.publish(
            owner.announcement(
                D, clone=[own_url, server.url(f"{D}.git")], relays=[f"ws://{authority}"]
            )
        )
        assert ok[2] is True, ok
        state = owner.state(D, {"refs/heads/main": missing})
        ok = client.publish(state)
        assert ok[2] is True and ok[3].startswith("purgatory:"), ok
    finally:
        client.close()
    wait_for(
        lambda: (
            (s := status(relay)["sync"])
            and s["domains"]
            and s["in_progress"] == 0
            and s["next_attempts"]
        ),
        timeout=15,
        message="the failed attempt to be recorded",
    )


def status(relay: RelayProcess) -> dict:
    with urllib.request.urlopen(relay.http_url + "/status.json", timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_s13_status_page_in_chromium_shows_live_queue_domain_and_purgatory(relay_factory, tmp_path):
    with GitServer(tmp_path / "remote", host=HOST) as server:
        relay = relay_factory(
            "--allow-private-fetch", "--sync-default-delay-secs", "0", "--sync-backoff-scale", "30"
        )  # next attempt in 10 min: a still picture
        held_state_with_a_failed_attempt(relay, server)
        page = relay.http_url + "/status"
        dom = chromium(tmp_path / "profile-dom", page, "--dump-dom").stdout
        shot = tmp_path / "status.png"
        chromium(tmp_path / "profile-shot", page, f"--screenshot={shot}")
        snapshot = status(relay)

    parsed = SectionText({"live", "sync-body", "domains-body", "purgatory-body"})
    parsed.feed(dom)
    # the script ran under the page's CSP, fetched /status.json and rendered it
    assert flat(parsed.text["live"]) == "live" and parsed.classes["live"] == "live ok", dom[:2000]

    sync = snapshot["sync"]
    assert sync["queue_size"] == 1 and sync["next_attempts"][0]["identifier"] == D
    # the backoff (20 s x 30) shown as "9 min" or "10 min" (S4.1)
    assert re.fullmatch(
        r"1 queued 0 syncing Next attempts identifier in watched (9|10) min",
        flat(parsed.text["sync-body"]),
    ), flat(parsed.text["sync-body"])

    [domain] = sync["domains"]
    assert (domain["domain"], domain["in_flight"], domain["window_used"]) == (HOST, 0, 1)
    assert flat(parsed.text["domains-body"]) == (
        f"domain in flight queued rate window {HOST} 0 / 5 0 1 / 30"
    )

    assert snapshot["purgatory"]["counts"]["30618"] == 1
    purgatory = flat(parsed.text["purgatory-body"])
    assert "30618 states 1" in purgatory and purgatory.endswith(
        "total 2"
    )  # + the held announcement

    width, height, distinct_rows = png_pixels_vary(shot)
    assert (width, height) == WINDOW
    assert shot.stat().st_size > 10_000 and distinct_rows > 100, (
        shot.stat().st_size,
        distinct_rows,
    )
    assert not snapshot["releases"]  # the event stayed held the whole time
