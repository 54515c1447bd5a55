"""Why is it still held? (S18) — against real ``grasp-relay`` processes and git servers.

Relay B holds a state whose commit none of the three clone URLs can give: the first answers
404 (no such repository), the second is a ``git http-backend`` with the repository but not the
commit ("forgot to push to the other forge"), the third is ``git://``, which the fetch policy
refuses. After a few attempts (backoff scaled by 0.01), ``/status.json`` and
``/status/<identifier>`` name each URL with its reason; the ``git://`` URL was logged once and
never contacted again (S18.2), the lacking server was a WARNING once, the 404 once (its reason
never changed). Then the commit is pushed to the second server and the next attempt releases.

Relay C copies B's events (``--sync-source``, S10.7) without ``--allow-private-fetch``: at
start-up it warns that the loopback sync source's git data cannot be fetched, naming the flag,
and its history shows the refusal of B's clone URL with the same advice.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

import pytest

from tests.integration.support import E2ERelay, announcement_listing, planned_domain, push
from tests.support.gitrepo import RepoBuilder
from tests.support.nip34 import Key
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

ID = "why-held"
FAST_BACKOFF = ("--sync-backoff-scale", "0.01")  # 20/40/80/120 s -> 0.2/0.4/0.8/1.2 s


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def identifier_page(relay: E2ERelay, identifier: str) -> str:
    path = "/status/" + urllib.parse.quote(identifier, safe="")
    with urllib.request.urlopen(relay.http_url + path, timeout=5) as response:
        assert response.status == 200
        return visible_text(response.read().decode())


def history_of(relay: E2ERelay, identifier: str) -> dict | None:
    held = relay.status()["history"]["identifiers"]
    return next((h for h in held if h["identifier"] == identifier), None)


def warnings_about(relay: E2ERelay, url: str) -> list[str]:
    return [line for line in relay.log.splitlines() if " WARNING " in line and url in line]


def test_s18_why_is_it_still_held_three_urls_three_reasons(cluster, tmp_path):
    owner = Key()
    gone = cluster.git_server("GONE", host="127.0.0.2")  # serves no repository called ID
    lacking = cluster.git_server("LACKING", host="127.0.0.3")
    served = RepoBuilder.create(lacking.root / f"{ID}.git")
    served.commit("what the other forge has", branch="main")
    local = RepoBuilder.create(tmp_path / "local.git")
    tip = local.chain(2, branch="main")[-1]  # only the user has it
    gone_url, lacking_url = gone.url(f"{ID}.git"), lacking.url(f"{ID}.git")
    git_url = f"git://127.0.0.4/{ID}.git"

    b = cluster.relay("B", *FAST_BACKOFF, user_delay=0.1)
    announcement = announcement_listing(
        owner, ID, [b.domain], extra_clone=[gone_url, lacking_url, git_url]
    )
    state = owner.state(ID, {"refs/heads/main": tip})
    b.publish(announcement, state)

    def attempted_three_times() -> dict | None:
        h = history_of(b, ID)
        return h if h and h["attempt_count"] >= 3 and h["state"] == "queued" else None

    wait_for(attempted_three_times, 15, message=lambda: f"three attempts\n{b.log_tail()}")
    history = attempted_three_times()
    assert history is not None
    urls = {u["url"]: u for u in history["urls"]}
    assert set(urls) == {gone_url, lacking_url, git_url}
    assert (urls[gone_url]["reason"], urls[gone_url]["outcome"]) == ("not_found", "failed")
    assert urls[lacking_url]["reason"] == "missing_objects" and urls[lacking_url]["missing"] == 1
    assert urls[git_url]["reason"] == "policy" and urls[git_url]["permanent"] is True
    assert urls[git_url]["attempts"] == 1  # never contacted again (S18.2)
    assert urls[gone_url]["attempts"] >= 3 and urls[lacking_url]["attempts"] >= 3
    newest = history["attempts"][0]
    assert newest["path"] == "main" and newest["seconds"] is not None
    assert history["next_attempt_at"] is not None

    page = identifier_page(b, ID)
    assert f"{gone_url} " in page and "not_found: " in page
    assert f"{lacking_url} " in page and "lacks 1 needed object" in page
    assert f"{git_url} " in page and "refused by the fetch policy: git:// is disabled" in page

    assert len(warnings_about(b, git_url)) == 1, warnings_about(b, git_url)
    assert "not tried again" in warnings_about(b, git_url)[0]
    assert len(warnings_about(b, lacking_url)) == 1, warnings_about(b, lacking_url)
    assert "answered without 1 of the needed objects" in warnings_about(b, lacking_url)[0]
    assert len(warnings_about(b, gone_url)) == 1, warnings_about(b, gone_url)
    assert git_url not in "".join(r.path for r in gone.requests + lacking.requests)

    push(local.path, str(served.path), "main:refs/heads/pushed-at-last")  # on the server's disk
    b.wait_served(state)
    done = history_of(b, ID)
    assert done is not None and done["state"] == "done"
    assert done["attempts"][0]["url"] == lacking_url
    assert (done["attempts"][0]["outcome"], done["attempts"][0]["released"]) == ("released", 1)
    assert done["attempts"][0]["bytes"] > 0
    assert len(warnings_about(b, git_url)) == 1


def test_s18_2_a_loopback_sync_source_without_the_flag_warns_at_start_up(cluster, tmp_path):
    owner = Key()
    local = RepoBuilder.create(tmp_path / "local.git")
    tip = local.chain(2, branch="main")[-1]
    a = cluster.relay("A")
    announcement = announcement_listing(owner, "behind", [a.domain, planned_domain("C")])
    state = owner.state("behind", {"refs/heads/main": tip})
    a.publish(announcement, state)
    push(local.path, a.clone_url(owner.pubkey, "behind"), "main:main")
    a.wait_served(announcement, state)

    c = cluster.relay(
        "C", *FAST_BACKOFF, fixed_domain=True, sync_from=[a], allow_private_fetch=False
    )
    [warning] = [
        line for line in c.log.splitlines() if " WARNING " in line and "sync source" in line
    ]
    assert f"sync source {a.ws_url}: 127.0.0.1 is a loopback address" in warning
    assert warning.endswith("start with --allow-private-fetch to allow it")

    source_url = a.public_clone_url(owner.pubkey, "behind")
    wait_for(
        lambda: (h := history_of(c, "behind")) and h["urls"],
        15,
        message=lambda: f"C to try A's clone URL\n{c.log_tail()}",
    )
    [url] = history_of(c, "behind")["urls"]
    assert (url["url"], url["reason"], url["permanent"]) == (source_url, "policy", True)
    assert "(--allow-private-fetch allows it)" in url["detail"]
    refusals = [line for line in warnings_about(c, source_url) if "fetch policy" in line]
    assert len(refusals) == 1 and "--allow-private-fetch allows it" in refusals[0]
    page = identifier_page(c, "behind")
    assert f"{source_url} 1 refused by the fetch policy: 127.0.0.1" in page
    assert "(--allow-private-fetch allows it); not tried again" in page
    with pytest.raises(urllib.error.HTTPError) as missing:
        identifier_page(c, "never-heard-of")
    assert missing.value.code == 404
