"""URL policy for remote fetches (S3.4): which URLs we may contact, and at which address.

Clone URLs come from other people's Nostr events, so a fetch is a request an anonymous party
makes our server send.  Without a policy that is a server-side request forgery hole: a clone URL
``http://127.0.0.1:6379/`` or ``http://169.254.169.254/`` would make the relay talk to its own
private network.  The rules:

* scheme ``http`` or ``https`` only; ``git://`` is refused even when ``allow_git_scheme`` is set,
  because dulwich's TCP client resolves the host itself and sets no socket timeout, so neither
  the address pinning below nor the per-read timeout of S7.2 could be enforced;
* no userinfo (``user:pass@``), no query or fragment, no control characters;
* the host is resolved once; the address must not be loopback, private, link-local, multicast,
  unspecified, reserved or otherwise non-global unless ``allow_private`` is set or the address
  lies in one of ``allowed_networks``;
* the connection then goes to exactly that checked address (see ``http_client.py``), so a DNS
  answer that changes between check and connect (DNS rebinding) cannot redirect it.

Everything here except :func:`resolve_host` is pure and needs no network.  :func:`would_refuse`
answers "is this URL refused on sight?" (its text, or a literal address) without DNS, for
answers and warnings that must not wait on a resolver; :func:`is_address_refusal` tells a
refusal of the address (which ``--allow-private-fetch`` lifts) from one of the URL's text.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from grasp.git.errors import FetchError

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], Sequence[str]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REFUSED_CLASSES = (
    ("is_loopback", "loopback"),
    ("is_private", "private"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_unspecified", "unspecified"),
    ("is_reserved", "reserved"),
)


@dataclass(frozen=True)
class FetchPolicy:
    """What remote fetches may contact.

    ``allow_private`` (``--allow-private-fetch``) switches the address check off entirely (tests
    and closed networks).  ``allowed_networks`` is a narrower escape hatch: CIDR strings whose
    addresses pass even though they are private (e.g. a mirror on ``10.1.0.0/16``).
    """

    allow_private: bool = False
    allow_git_scheme: bool = False
    allowed_networks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for net in self.allowed_networks:
            ipaddress.ip_network(net)  # raises ValueError early for a typo


@dataclass(frozen=True)
class CheckedURL:
    """A URL that passed the policy, with the address every connection to ``host`` must use."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def check_url(url: str, policy: FetchPolicy, *, resolve: Resolver | None = None) -> CheckedURL:
    """Apply the whole policy to ``url``; returns the pinned address or raises ``FetchError``.

    Reasons: ``"policy"`` for a refused URL or address, ``"dns"`` when the host does not resolve.
    """
    scheme, host, port = check_url_syntax(url, policy)
    address = pin_address(url, host, port, policy, resolve=resolve)
    return CheckedURL(url=url, scheme=scheme, host=host, port=port, address=address)


def check_url_syntax(url: str, policy: FetchPolicy) -> tuple[str, str, int]:
    """The checks that need no DNS: scheme, userinfo, host, port.  Returns (scheme, host, port)."""
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        raise FetchError(url, "policy", "URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(url, "policy", f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "git":
        why = (
            "is not supported (its address cannot be pinned)"
            if policy.allow_git_scheme
            else "is disabled"
        )
        raise FetchError(url, "policy", f"git:// {why}")
    if scheme not in _DEFAULT_PORTS:
        raise FetchError(
            url, "policy", f"scheme {scheme or '(none)'!r} is not allowed (http/https only)"
        )
    if "@" in parts.netloc:
        raise FetchError(url, "policy", "URLs with userinfo (credentials) are not allowed")
    if parts.query or parts.fragment:
        raise FetchError(url, "policy", "URLs with a query or fragment are not allowed")
    host = parts.hostname
    if not host:
        raise FetchError(url, "policy", "URL has no host")
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def pin_address(
    url: str, host: str, port: int, policy: FetchPolicy, *, resolve: Resolver | None = None
) -> str:
    """Resolve ``host`` (literal IPs need no DNS) and return the first address the policy allows."""
    try:
        addresses = _literal(host) or list((resolve or resolve_host)(host, port))
    except (OSError, UnicodeError) as exc:
        raise FetchError(url, "dns", f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise FetchError(url, "dns", f"{host} has no addresses")
    refusals = []
    for address in addresses:
        refusal = address_refusal(address, policy)
        if refusal is None:
            return address
        refusals.append(refusal)
    raise FetchError(url, "policy", f"{host}: " + "; ".join(refusals))


def address_refusal(address: str, policy: FetchPolicy) -> str | None:
    """Why ``address`` may not be contacted under ``policy``, or None when it may."""
    if policy.allow_private:
        return None
    ip = ipaddress.ip_address(address)
    candidates = [ip, *_embedded_ipv4(ip)]
    allowed = [ipaddress.ip_network(net) for net in policy.allowed_networks]
    for candidate in candidates:
        if any(candidate.version == net.version and candidate in net for net in allowed):
            continue
        for attr, label in _REFUSED_CLASSES:
            if getattr(candidate, attr):
                return f"{address} is a {label} address"
        if not candidate.is_global:
            return f"{address} is not a globally routable address"
    return None


def would_refuse(url: str, policy: FetchPolicy) -> str | None:
    """Why ``url`` is refused without any DNS lookup (its text, or a literal IP address), or
    None when it may be fetched as far as that can be told (a host name still needs DNS)."""
    try:
        _scheme, host, _port = check_url_syntax(url, policy)
    except FetchError as exc:
        return exc.detail
    literal = _literal(host)
    refusal = address_refusal(literal[0], policy) if literal else None
    return f"{host}: {refusal}" if refusal else None


def is_address_refusal(detail: str, policy: FetchPolicy) -> bool:
    """Whether a ``policy`` refusal's ``detail`` is about the address (what allowing private
    fetches would lift), not about the URL's text (scheme, credentials, ...)."""
    if policy.allow_private:
        return False
    labels = [f"is a {label} address" for _, label in _REFUSED_CLASSES]
    return any(text in detail for text in (*labels, "is not a globally routable address"))


def resolve_host(host: str, port: int) -> list[str]:
    """DNS lookup (cooperative under gevent's monkey patching); raises OSError on failure."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in seen:
            seen.append(address)
    return seen


def _literal(host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return []


def _embedded_ipv4(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address reaches through mapping, 6to4 or NAT64."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found
