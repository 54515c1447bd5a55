"""The seed's per-identifier sync functions (S5), over any throttle object.

The throttle object offers ``is_throttled(domain)``, ``start_request(domain) -> bool`` (an atomic
check-and-start, S6.4), ``complete_request(domain)`` and
``enqueue_identifier(domain, identifier, tried_urls)``: the plain ``ThrottleManager`` in unit
tests, a client of the DomainThrottle actors inside the system. These functions block while
``ctx.fetch_oids`` runs, so only FetchActors call them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .context import FetchFailed, SyncContext
from .urls import candidate_urls, extract_domain

logger = logging.getLogger(__name__)

__all__ = [
    "ThrottledDomain",
    "get_throttled_domains_with_untried_urls",
    "sync_identifier",
    "sync_identifier_from_url",
    "sync_identifier_next_url",
]


class Throttle(Protocol):
    def is_throttled(self, domain: str) -> bool: ...

    def start_request(self, domain: str) -> bool: ...

    def complete_request(self, domain: str) -> None: ...

    def enqueue_identifier(
        self, domain: str, identifier: str, tried_urls: Iterable[str]
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class ThrottledDomain:
    domain: str
    tried_urls_for_domain: frozenset[str]


def _urls(ctx: SyncContext, identifier: str) -> list[str] | None:
    """Candidate URLs when there is anything to fetch, else None (the S5.1 preconditions)."""
    if not ctx.has_pending_events(identifier):
        logger.debug("%s: no pending events", identifier)
        return None
    if not ctx.collect_needed_oids(identifier):
        logger.debug("%s: no OIDs needed", identifier)
        return None
    data = ctx.fetch_repository_data(identifier)
    return candidate_urls(data.clone_urls(), ctx.our_domain())


def sync_identifier_next_url(
    ctx: SyncContext,
    identifier: str,
    domain: str | None,
    tried_urls: Iterable[str],
    throttle: Throttle,
) -> str | None:
    """An untried URL to fetch from next (S5.1).

    With ``domain=None``: the first untried URL whose domain is not throttled. With a domain:
    the first untried URL of that domain, throttled or not (the caller holds its slot).
    """
    urls = _urls(ctx, identifier)
    if not urls:
        return None
    tried = set(tried_urls)
    for url in urls:
        if url in tried:
            continue
        url_domain = extract_domain(url)
        if url_domain is None:
            continue
        if domain is not None:
            if url_domain == domain:
                return url
        elif throttle.is_throttled(url_domain):
            logger.debug("%s: %s is throttled, skipping %s", identifier, url_domain, url)
        else:
            return url
    return None


def sync_identifier_from_url(
    ctx: SyncContext, identifier: str, url: str, throttle: Throttle
) -> int | None:
    """Fetch every needed OID of ``identifier`` from ``url`` in one request (S5.2).

    Returns how many OIDs arrived (0 when the fetch failed: a :class:`FetchFailed` is logged,
    never raised), or None when the domain had no capacity left at the moment of starting
    (S6.4) and nothing was attempted. After a fetch that brought anything, releases what is now
    satisfiable (S5.4). Any other exception is a bug and propagates, after the request's slot
    was given back.
    """
    domain = extract_domain(url)
    if domain is None:
        return 0
    target = ctx.find_target_repo(ctx.fetch_repository_data(identifier))
    if target is None:
        logger.debug("%s: no target repository on disk", identifier)
        return 0
    needed = sorted(ctx.collect_needed_oids(identifier))
    if not needed:
        return 0
    if not throttle.start_request(domain):
        logger.debug("%s: %s became throttled before the fetch", identifier, domain)
        return None
    try:
        fetched = ctx.fetch_oids(target, url, needed)
    except FetchFailed as exc:
        logger.warning("%s: %s", identifier, exc)  # the failure names the URL and the reason
        fetched = []
    finally:
        throttle.complete_request(domain)
    if not fetched:
        logger.debug("%s: %s had none of the %d needed OIDs", identifier, url, len(needed))
        return 0
    logger.debug("%s: fetched %d OIDs from %s", identifier, len(fetched), url)
    ctx.process_satisfiable_events(identifier)
    return len(fetched)


def sync_identifier(ctx: SyncContext, identifier: str, throttle: Throttle) -> bool:
    """One sync attempt for an identifier; True when nothing is left to fetch (S5.3).

    First releases whatever the disk already satisfies (data may have come by a push or by a
    copy into another owner's repository), then walks untried URLs on non-throttled domains,
    releasing after each fetch. When only throttled domains remain, the identifier is queued
    on each of them with the URLs of that domain already tried, and False is returned.
    """
    ctx.process_satisfiable_events(identifier)
    tried: set[str] = set()
    deferred: set[str] = set()
    while url := sync_identifier_next_url(ctx, identifier, None, tried | deferred, throttle):
        if sync_identifier_from_url(ctx, identifier, url, throttle) is None:
            deferred.add(url)  # lost the slot to a concurrent fetch: leave it for the queue
            continue
        tried.add(url)
        if not ctx.has_pending_events(identifier):
            return True
        if not ctx.collect_needed_oids(identifier):
            ctx.process_satisfiable_events(identifier)
            return True
    if not ctx.has_pending_events(identifier) or not ctx.collect_needed_oids(identifier):
        return True
    for info in get_throttled_domains_with_untried_urls(ctx, identifier, tried, throttle):
        logger.debug("%s: queued on throttled domain %s", identifier, info.domain)
        throttle.enqueue_identifier(info.domain, identifier, info.tried_urls_for_domain)
    return False


def get_throttled_domains_with_untried_urls(
    ctx: SyncContext, identifier: str, tried_urls: Iterable[str], throttle: Throttle
) -> list[ThrottledDomain]:
    """Every throttled domain that still has an untried URL, with its tried URLs (S5.3)."""
    urls = _urls(ctx, identifier) or []
    tried = set(tried_urls)
    by_domain: dict[str, list[str]] = {}
    for url in urls:
        domain = extract_domain(url)
        if domain is not None:
            by_domain.setdefault(domain, []).append(url)
    result = []
    for domain, domain_urls in by_domain.items():
        if any(u not in tried for u in domain_urls) and throttle.is_throttled(domain):
            done = frozenset(u for u in domain_urls if u in tried)
            result.append(ThrottledDomain(domain, done))
    return result
