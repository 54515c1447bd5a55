"""The landing page at ``GET /<npub>/<identifier>.git`` (GRASP-01 L58, S15.3): served for hosted
repositories only, self-contained, every value of the (hostile) announcement escaped, with
links a nostr git client understands (the naddr checked by nostr-sdk, an independent decoder).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
import urllib3
from gevent.pywsgi import WSGIServer

from grasp.nostr.bech32 import naddr_decode, npub_encode
from grasp.relay.git_service.service import GitService
from tests.admission.test_write_policy import RecordingSync
from tests.support.nip34 import Key

HOSTILE = '<script>alert("x")</script>'


class Links(HTMLParser):
    """Every element and attribute, to prove what the page loads and links."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.loads: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "href":
                self.hrefs.append(value or "")
            if name in ("src", "srcset") or (tag == "link" and name == "href"):
                self.loads.append(value or "")


@pytest.fixture
def served(world):
    service = GitService(
        world.index, world.store, world.purgatory, RecordingSync(world), domain="relay.example"
    )
    server = WSGIServer(("127.0.0.1", 0), service.app(), log=None, error_log=None)
    server.start()
    with urllib3.PoolManager(retries=False, timeout=10) as http:
        yield http, f"http://127.0.0.1:{server.server_port}"
    server.stop(timeout=5)


def _hostile_repository(world, identifier="émoji-🚀", held=False):
    owner, maintainer = Key(), Key()
    npub = npub_encode(owner.pubkey)
    world.announce(
        owner,
        identifier,
        held=held,
        clone=[f"https://relay.example/{npub}/{quote(identifier)}.git", "https://x.example/r.git"],
        relays=["wss://relay.example"],
        maintainers=[maintainer.pubkey],
    )
    return owner, maintainer


def test_grasp01_l58_a_hosted_repository_has_a_landing_page(world, served):
    http, base = served
    owner, maintainer = _hostile_repository(world)
    npub = npub_encode(owner.pubkey)
    page = http.request("GET", f"{base}/{npub}/{quote('émoji-🚀')}.git")
    assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    text = page.data.decode()
    assert f"git clone https://relay.example/{npub}/{quote('émoji-🚀')}.git" in text
    assert "https://x.example/r.git" in text
    assert npub_encode(maintainer.pubkey) in text and npub in text
    links = Links()
    links.feed(text)
    assert links.loads == [] and "script" not in links.tags and "link" not in links.tags
    [workshop] = [h for h in links.hrefs if h.startswith("https://gitworkshop.dev/")]
    naddr = workshop.removeprefix("https://gitworkshop.dev/")
    assert naddr_decode(naddr) == (30617, owner.pubkey, "émoji-🚀", ("wss://relay.example",))
    import nostr_sdk

    coordinate = nostr_sdk.Nip19Coordinate.from_bech32(naddr).coordinate()
    assert (coordinate.public_key().to_hex(), coordinate.identifier()) == (
        owner.pubkey,
        "émoji-🚀",
    )
    assert re.search(r"nostr://npub1\w+/relay\.example/%C3%A9moji-%F0%9F%9A%80", text)


def test_s15_3_every_value_of_the_announcement_is_escaped(world, served):
    http, base = served
    from grasp.nostr.event import sign_event

    owner = Key()
    npub = npub_encode(owner.pubkey)
    event = sign_event(
        owner.secret,
        30617,
        [
            ["d", "repo"],
            ["name", HOSTILE],
            ["description", f"<img src=x onerror=alert(1)> {HOSTILE}"],
            ["web", "javascript:alert(1)", "https://ok.example/?a=1&b=<2>"],
            ["clone", f"https://relay.example/{npub}/repo.git", f'https://e.example/"{HOSTILE}'],
        ],
        "",
    )
    world.store.save(event)
    world.repo(owner, "repo")
    text = http.request("GET", f"{base}/{npub}/repo.git").data.decode()
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    links = Links()
    links.feed(text)
    assert "javascript:alert(1)" not in links.hrefs  # shown as text, never a link
    assert "https://ok.example/?a=1&b=<2>" in links.hrefs  # the parser unescaped it back
    assert links.loads == []


def test_grasp01_l58_unhosted_repositories_get_a_404_page(world, served):
    http, base = served
    stranger = npub_encode(Key().pubkey)
    page = http.request("GET", f"{base}/{stranger}/nothing.git")
    assert page.status == 404 and page.headers["Content-Type"].startswith("text/html")
    assert b"Repository not found" in page.data
    assert http.request("GET", f"{base}/{stranger}/nothing.git/").status == 404


def test_a_held_announcement_says_it_waits_for_its_first_push_and_head_has_no_body(world, served):
    http, base = served
    owner, _ = _hostile_repository(world, identifier="waiting", held=True)
    url = f"{base}/{npub_encode(owner.pubkey)}/waiting.git"
    assert b"Waiting for its first push" in http.request("GET", url).data
    head = http.request("HEAD", url)
    assert head.status == 200 and head.data == b"" and int(head.headers["Content-Length"]) > 0
