"""Which relay URLs become peers (S17.1), as pure functions (no DNS, no I/O).

A URL from a ``relays`` tag is someone else's text, so it is checked like a clone URL (S3.4):
``ws``/``wss`` only, no userinfo, query or fragment, and a literal address the fetch policy
refuses (loopback, private, ... unless ``--allow-private-fetch``) is refused on sight. A host
name is resolved only when the peer is connected to (:mod:`.peer`), so a flood of announcements
never turns into a flood of DNS lookups here.

"Ourselves" is decided by authority: the URL's host and port (the scheme's default when
absent, 80 for ``ws``, 443 for ``wss``) against ``--domain`` (``host[:port]``; without a port
it matches either default port, since a relay behind a TLS proxy is announced as ``wss://host``
and as ``ws://host`` alike). Host names compare case-insensitively; ``localhost`` and
``127.0.0.1`` are different texts and are not taken for each other, except that the listening
address counts as ourselves too (a relay reached as ``ws://127.0.0.1:<port>`` while its
``--domain`` is a name; with ``--host 0.0.0.0``, ``127.0.0.1`` and ``localhost`` at that port).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from grasp.git.url_policy import FetchPolicy, would_refuse

__all__ = ["PeerRefused", "normalise_peer_url", "peer_url_refusal"]

_DEFAULT_PORTS = {"ws": 80, "wss": 443}
_HTTP_OF = {"ws": "http", "wss": "https"}
MAX_URL_LENGTH = 512


class PeerRefused(ValueError):
    """A relay URL that does not become a peer; the text says why."""


def normalise_peer_url(url: str) -> str:
    """One spelling per relay: lower-case scheme and host, no default port, no lone ``/``.

    Raises :class:`PeerRefused` for anything that is not a usable ``ws``/``wss`` URL.
    """
    text = url.strip()
    if not text or len(text) > MAX_URL_LENGTH:
        raise PeerRefused(f"relay URL is empty or longer than {MAX_URL_LENGTH} characters")
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in text):
        raise PeerRefused("relay URL contains whitespace or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise PeerRefused(f"malformed relay URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise PeerRefused(f"relay URL scheme {scheme or '(none)'!r} is not ws or wss")
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise PeerRefused("relay URLs with userinfo, a query or a fragment are not peers")
    host = (parts.hostname or "").lower()
    if not host:
        raise PeerRefused("relay URL has no host")
    shown_host = f"[{host}]" if ":" in host else host
    authority = shown_host if port in (None, _DEFAULT_PORTS[scheme]) else f"{shown_host}:{port}"
    path = "" if parts.path in ("", "/") else parts.path
    return f"{scheme}://{authority}{path}"


def is_ourselves(url: str, domains: str | Sequence[str]) -> bool:
    """Does the (normalised) relay URL name one of this relay's authorities (``--domain``, the
    listening address)?"""
    if not isinstance(domains, str):
        return any(is_ourselves(url, domain) for domain in domains)
    domain = domains
    parts = urlsplit(url)
    host, port = (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS[parts.scheme]
    ours = urlsplit(f"//{domain.strip().lower()}")
    own_host = (ours.hostname or "").lower()
    if host != own_host:
        return False
    return port == ours.port if ours.port is not None else port in _DEFAULT_PORTS.values()


def peer_url_refusal(url: str, domains: str | Sequence[str], policy: FetchPolicy) -> str | None:
    """Why the normalised ``url`` is not a peer (ourselves, or refused by the fetch policy)."""
    if is_ourselves(url, domains):
        return "it is this relay (--domain)"
    scheme = urlsplit(url).scheme
    probe = _HTTP_OF[scheme] + url[len(scheme) :]
    refusal = would_refuse(probe, policy)
    return f"the fetch policy refuses it: {refusal}" if refusal else None
