"""The landing page of a hosted repository at ``GET /<npub>/<identifier>.git`` (GRASP-01 L58,
S15.3), and the 404 page of one that is not hosted.

Server-rendered HTML with no external assets (no scripts, no style sheets, no images: the page
works offline and leaks no visitor to a third party), every value from an event escaped —
announcements are written by strangers, so a name like ``<script>`` must stay text, and a
``web`` URL becomes a link only when it is ``http(s)``. The page names the repository, its
description, the clone URL on this relay and the others the announcement lists, the owner and
maintainers, and links to nostr git clients: gitworkshop.dev by the announcement's NIP-19
``naddr`` (with this relay as hint) and the ``nostr://`` clone URL that ngit's
``git-remote-nostr`` understands (NIP-34).
"""

from __future__ import annotations

import logging
from html import escape
from urllib.parse import quote

from grasp.nostr import kinds
from grasp.nostr.bech32 import naddr_encode, npub_encode
from grasp.nostr.nip34 import Announcement

logger = logging.getLogger(__name__)

__all__ = ["landing_page", "not_hosted_page"]

GITWORKSHOP = "https://gitworkshop.dev/"
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5}code{background:#f3f3f3;padding:.1rem .3rem;word-break:break-all}"
    "li{margin:.2rem 0}.muted{color:#666}"
)


def landing_page(
    announcement: Announcement, *, clone_url: str, relay_url: str, held: bool = False
) -> str:
    """The HTML page of ``announcement``'s repository on this relay.

    ``clone_url`` is this relay's smart-HTTP URL of the repository, ``relay_url`` its websocket
    URL (the relay hint of the ``naddr`` and of the ``nostr://`` URL); ``held`` says the
    announcement still waits in purgatory for its first push (S1.1).
    """
    owner_npub = npub_encode(announcement.owner)
    identifier = announcement.identifier
    name = announcement.name or identifier
    naddr = naddr_encode(kinds.REPO_ANNOUNCEMENT, announcement.owner, identifier, (relay_url,))
    relay_hint = relay_url.removeprefix("wss://")
    nostr_url = f"nostr://{owner_npub}/{quote(relay_hint, safe='')}/{quote(identifier, safe='')}"
    others = [url for url in announcement.clone_urls if url != clone_url]
    people = [announcement.owner, *(m for m in announcement.maintainers if m != announcement.owner)]
    sections = [
        f"<h1>{escape(name)}</h1>",
        f"<p class=muted>{escape(owner_npub)} / {escape(identifier)}</p>",
        f"<p>{escape(announcement.description)}</p>" if announcement.description else "",
        "<p><strong>Waiting for its first push:</strong> the announcement is held until the "
        "repository has data.</p>"
        if held
        else "",
        "<h2>Clone</h2>",
        f"<p><code>git clone {escape(clone_url)}</code></p>",
        f"<p>with ngit: <code>git clone {escape(nostr_url)}</code></p>",
        _list("Also served at", [f"<code>{escape(url)}</code>" for url in others]),
        "<h2>Browse with a nostr git client</h2>",
        f'<p><a href="{escape(GITWORKSHOP + naddr)}">gitworkshop.dev</a> '
        f"(<code>{escape(naddr)}</code>)</p>",
        _list("Web", [_link(url) for url in announcement.web]),
        _list("Maintainers", [f"<code>{escape(npub_encode(p))}</code>" for p in people]),
    ]
    return _page(f"{name} · {identifier}", "".join(s + "\n" for s in sections if s))


def not_hosted_page(npub: str, identifier: str) -> str:
    """The 404 page: the relay hosts no repository at this address (L58)."""
    body = (
        "<h1>Repository not found</h1>\n"
        f"<p>This relay hosts no repository <code>{escape(npub)}/{escape(identifier)}</code>. "
        "A repository is hosted once its announcement (kind 30617) lists this relay in "
        "<code>clone</code> and <code>relays</code>.</p>\n"
    )
    return _page("Repository not found", body)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}"
        "</body></html>\n"
    )


def _list(title: str, items: list[str]) -> str:
    if not items:
        return ""
    rows = "".join(f"<li>{item}</li>" for item in items)
    return f"<h2>{escape(title)}</h2><ul>{rows}</ul>"


def _link(url: str) -> str:
    """A link only for http(s) URLs; anything else (``javascript:``, ``data:``) is text."""
    if url.lower().startswith(("https://", "http://")):
        return f'<a href="{escape(url)}" rel="nofollow noopener">{escape(url)}</a>'
    return f"<code>{escape(url)}</code>"
