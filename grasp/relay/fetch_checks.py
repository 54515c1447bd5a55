"""Start-up checks of what the fetch policy will refuse, said before anyone waits on it (S18.2).

A sync source on a loopback or private address (a second relay on the same machine, a test
setup) delivers events whose git data sits behind clone URLs on that same address, and the
fetch policy refuses those without ``--allow-private-fetch`` (S3.4): the events would wait in
purgatory until they expire, with nothing but a fetch refusal much later to say why. So each
such source is a WARNING at start-up that names the flag.

Names are resolved once, bounded by :data:`RESOLVE_SECS`; a name that does not resolve says
nothing here (the sync source reports its own connection errors).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

import gevent

from grasp.context import PRIVATE_FETCH_FLAG
from grasp.git import FetchError, FetchPolicy, check_url
from grasp.git.url_policy import Resolver, is_address_refusal

logger = logging.getLogger(__name__)

__all__ = ["RESOLVE_SECS", "unfetchable_sources", "warn_unfetchable_sources"]

#: How long start-up waits for one sync source's host name to resolve.
RESOLVE_SECS = 2.0
_HTTP_OF = {"ws": "http", "wss": "https"}


def unfetchable_sources(
    sources: Iterable[str], policy: FetchPolicy, *, resolve: Resolver | None = None
) -> list[str]:
    """One warning text per sync source whose address the fetch policy refuses."""
    warnings = []
    for source in sources:
        parts = urlsplit(source)
        scheme = _HTTP_OF.get(parts.scheme.lower())
        if scheme is None or not parts.hostname:
            continue
        probe = f"{scheme}://{parts.netloc}/"
        try:
            with gevent.Timeout(RESOLVE_SECS, TimeoutError):
                check_url(probe, policy, resolve=resolve)
        except FetchError as exc:
            if exc.reason == "policy" and is_address_refusal(exc.detail, policy):
                why = exc.detail.removeprefix(f"{parts.hostname}: ")
                warnings.append(
                    f"sync source {source}: {why}; the fetch policy refuses clone URLs "
                    f"on it ({probe}...), so git data its events need is never fetched from "
                    f"there (S3.4); start with {PRIVATE_FETCH_FLAG} to allow it"
                )
        except (TimeoutError, OSError) as exc:
            logger.debug("sync source %s: cannot check its address: %r", source, exc)
    return warnings


def warn_unfetchable_sources(sources: Iterable[str], policy: FetchPolicy) -> None:
    for text in unfetchable_sources(sources, policy):
        logger.warning("%s", text)
