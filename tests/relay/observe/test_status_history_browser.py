"""The sync history in a real browser (S18.1): headless Chromium loads ``/status`` and
``/status/<identifier>`` of a ``grasp-relay`` whose one held identifier failed at all three of
its clone URLs — a 404, a server without the commit, a ``git://`` URL the policy refuses — and
the test reads what a person sees after the page's script re-rendered it, and screenshots both.

Set ``GRASP_SCREENSHOT_DIR`` to keep the screenshots (``docs/images/`` has the committed ones).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

from grasp.nostr.event import npub_encode
from tests.relay.observe.test_status_browser import SectionText, chromium, flat, png_pixels_vary
from tests.support.gitrepo import RepoBuilder
from tests.support.gitserver import GitServer
from tests.support.nip34 import Key
from tests.support.relay import RelayClient, RelayProcess
from tests.support.wait import wait_for

D = "why-held"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium not found (Debian: apt-get install -y chromium)",
    ),
]


def status(relay: RelayProcess) -> dict:
    with urllib.request.urlopen(relay.http_url + "/status.json", timeout=5) as response:
        return json.loads(response.read())


def hold_with_three_failing_urls(relay: RelayProcess, gone: GitServer, lacking: GitServer):
    """Announce D with the three URLs, hold a state none of them can give, wait for the
    attempt to end. Returns the three URLs."""
    RepoBuilder.create(lacking.root / f"{D}.git").commit("what the other forge has")
    missing = RepoBuilder.create(lacking.root.parent / "unpushed.git").commit("only here")
    urls = [gone.url(f"{D}.git"), lacking.url(f"{D}.git"), f"git://127.0.0.4/{D}.git"]
    owner = Key()
    authority = f"127.0.0.1:{relay.port}"
    own = f"http://{authority}/{npub_encode(owner.pubkey)}/{D}.git"
    client = RelayClient(relay.ws_url)
    try:
        announcement = owner.announcement(D, clone=[own, *urls], relays=[f"ws://{authority}"])
        assert client.publish(announcement)[2] is True
        ok = client.publish(owner.state(D, {"refs/heads/main": missing}))
        assert ok[2] is True and ok[3].startswith("purgatory:"), ok
    finally:
        client.close()

    def attempted() -> bool:
        [held] = status(relay)["history"]["identifiers"] or [None]
        return bool(held and held["state"] == "queued" and len(held["urls"]) == 3)

    wait_for(attempted, timeout=15, message="the failed attempt to be recorded")
    return urls


def keep(shot: Path) -> None:
    target = os.environ.get("GRASP_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / shot.name)


def test_s18_1_status_in_chromium_names_each_url_and_its_reason(relay_factory, tmp_path):
    with (
        GitServer(tmp_path / "gone", host="127.0.0.2") as gone,
        GitServer(tmp_path / "lacking", host="127.0.0.3") as lacking,
    ):
        relay = relay_factory(
            "--allow-private-fetch", "--sync-default-delay-secs", "0", "--sync-backoff-scale", "30"
        )  # next attempt in 10 min: a still picture
        gone_url, lacking_url, git_url = hold_with_three_failing_urls(relay, gone, lacking)
        page = relay.http_url + "/status"
        dom = chromium(tmp_path / "profile-dom", page, "--dump-dom").stdout
        shot = tmp_path / "status-history.png"
        chromium(tmp_path / "profile-shot", page, f"--screenshot={shot}", "--window-size=1280,1100")
        detail = relay.http_url + f"/status/{D}"
        detail_dom = chromium(tmp_path / "profile-detail", detail, "--dump-dom").stdout
        detail_shot = tmp_path / "status-identifier.png"
        chromium(tmp_path / "profile-detail-shot", detail, f"--screenshot={detail_shot}")

    parsed = SectionText({"live", "history-body"})
    parsed.feed(dom)
    assert flat(parsed.text["live"]) == "live", dom[:2000]  # the script re-rendered it
    text = flat(parsed.text["history-body"])
    assert text.startswith(f"identifier state retries next attempt clone URLs {D} queued 1 in ")
    assert f"{gone_url} not_found: " in text
    assert f"{lacking_url} lacks 1 needed object (1\u00d7, " in text
    assert f"{git_url} refused by the fetch policy: git:// is disabled; not tried again" in text
    assert "3 of 3 attempts" in text  # the expandable history, closed by default
    assert f'<a href="/status/{D}">{D}</a>' in dom

    shown = SectionText({"urls", "attempts"})
    shown.feed(detail_dom)
    urls = flat(shown.text["urls"])
    assert urls.startswith("Clone URLs url asked last answer when")
    for url in (gone_url, lacking_url, git_url):
        assert f"{url} 1 " in urls
    attempts = flat(shown.text["attempts"])
    assert attempts.count(" main failed ") == 3 and "0 arrived, 1 missing" in attempts

    for picture in (shot, detail_shot):
        width, height, distinct_rows = png_pixels_vary(picture)
        assert width == 1280 and distinct_rows > 100, (picture, width, distinct_rows)
        keep(picture)
