"""Clone URL helpers: throttle keys and our-own-service exclusion (S3.1–S3.3)."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

__all__ = ["authority", "candidate_urls", "extract_domain"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=4096)
def extract_domain(url: str) -> str | None:
    """The throttle key: lowercased host without port or userinfo; None without a host (S3.3).

    Cached: a sync asks it of the same few URLs four to six times, and ``urlsplit`` was 7 % of
    the CPU per identifier through the actors (py-spy, ``scripts/bench/scheduler.py``).
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host or None


def authority(url: str) -> str | None:
    """``host[:port]`` lowercased, without userinfo and without the scheme's default port."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme.lower()):
        return host
    return f"{host}:{port}"


def candidate_urls(urls: list[str], our_domain: str | None) -> list[str]:
    """Drop URLs served by us: exact authority match, not the original's substring test (S3.2)."""
    if not our_domain:
        return urls
    ours = our_domain.strip().lower()
    return [url for url in urls if authority(url) != ours]
