"""The seed's per-identifier sync functions (S5), over any throttle object.

The throttle object offers ``is_throttled(domain)``, ``start_request(domain) -> bool`` (an atomic
check-and-start, S6.4), ``transfer_ended(domain, url)``, ``complete_request(domain, url, reason,
freed)`` and ``enqueue_identifier(domain, identifier, tried_urls)``: the plain ``ThrottleManager``
in unit tests, a client of the DomainThrottle actors inside the system. That client's
``is_throttled`` only remembers which domains refused its ``start_request`` (the check is the
atomic start itself, one ask per URL); a refused URL is left to its domain's queue, as is every
domain that refused. These functions block while ``ctx.fetch_oids`` runs, so only FetchActors
call them.

A request's slot is given back exactly once (:class:`_Slot`): when the port reports that the
transfer ended (the pack's last byte arrived, before it is indexed), else when ``fetch_oids``
returns or raises. Measured in the politeness benchmark (P2): indexing, the object check and the
answer's way back held the slot 170 ms past the server's last byte at the median, 1.8x the
server-side request duration; the remote sees none of that.

Every request that was made is described once, after its release work, as a
:class:`~messages.scheduler.FetchAttempted` handed to ``on_attempt`` (S18.1): the FetchActor
tells it to the Scheduler, which keeps the sync history and decides what is worth a WARNING.
So failures are logged here at DEBUG only (S18.2: once per change, not once per retry).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from messages.history import RELEASED
from messages.releaser import ProcessResult
from messages.scheduler import RELEASE_FAILED, FetchAttempted

from .context import (
    MISSING_OBJECTS,
    NOTHING_ABSENT,
    FetchFailed,
    FetchResult,
    RepositoryData,
    SyncContext,
)
from .urls import candidate_urls, extract_domain

logger = logging.getLogger(__name__)

__all__ = [
    "AttemptSink",
    "ThrottledDomain",
    "fetch_next_of_domain",
    "get_throttled_domains_with_untried_urls",
    "sync_identifier",
    "sync_identifier_from_url",
    "sync_identifier_next_url",
]


class Throttle(Protocol):
    def is_throttled(self, domain: str) -> bool: ...

    def start_request(self, domain: str) -> bool: ...

    def transfer_ended(self, domain: str, url: str) -> None: ...

    def complete_request(
        self, domain: str, url: str | None = None, reason: str | None = None, freed: bool = False
    ) -> None: ...

    def enqueue_identifier(
        self, domain: str, identifier: str, tried_urls: Iterable[str]
    ) -> None: ...


#: The release result of a request that brought nothing (no pass ran); one shared instance.
_NOTHING_RELEASED = ProcessResult()

#: Receives the description of each request made (S18.1).
AttemptSink = Callable[[FetchAttempted], None]


@dataclass(frozen=True, slots=True)
class ThrottledDomain:
    domain: str
    tried_urls_for_domain: frozenset[str]


@dataclass(slots=True)
class _Looked:
    """What choosing a URL read from the port (S5.1), handed on to the fetch from it (S5.2)
    so it does not read the same two answers again a moment later: nothing yields between
    the two. Measured: the repeated ``fetch_repository_data`` and ``collect_needed_oids``
    were ~5 % of the CPU per identifier through the actors (P4), and each is a store query
    in the relay.

    ``present`` is set by the fetch when nothing it was to ask for was absent (the relay
    counts present objects as needed, S2.3): the release pass it ran instead."""

    urls: list[str]
    data: RepositoryData
    needed: set[str]
    present: ProcessResult | None = None


def _look(ctx: SyncContext, identifier: str) -> _Looked | None:
    """Candidate URLs when there is anything to fetch, else None (the S5.1 preconditions)."""
    if not ctx.has_pending_events(identifier):
        logger.debug("%s: no pending events", identifier)
        return None
    needed = ctx.collect_needed_oids(identifier)
    if not needed:
        logger.debug("%s: no OIDs needed", identifier)
        return None
    data = ctx.fetch_repository_data(identifier)
    return _Looked(candidate_urls(data.clone_urls(), ctx.our_domain()), data, needed)


def _urls(ctx: SyncContext, identifier: str) -> list[str] | None:
    looked = _look(ctx, identifier)
    return None if looked is None else looked.urls


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
    looked = _look(ctx, identifier)
    if looked is None:
        return None
    return _pick(looked, identifier, domain, tried_urls, throttle)


def _pick(
    looked: _Looked,
    identifier: str,
    domain: str | None,
    tried_urls: Iterable[str],
    throttle: Throttle,
) -> str | None:
    tried = set(tried_urls)
    for url in looked.urls:
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


def fetch_next_of_domain(
    ctx: SyncContext,
    identifier: str,
    domain: str,
    tried_urls: Iterable[str],
    throttle: Throttle,
    on_attempt: AttemptSink | None = None,
) -> str | None:
    """The throttle path's unit of work (S6.3): ``sync_identifier_next_url`` with the domain,
    then ``sync_identifier_from_url`` with what choosing read; the URL, or None if none."""
    looked = _look(ctx, identifier)
    url = None if looked is None else _pick(looked, identifier, domain, tried_urls, throttle)
    if url is not None:
        sync_identifier_from_url(ctx, identifier, url, throttle, on_attempt, looked)
    return url


def sync_identifier_from_url(
    ctx: SyncContext,
    identifier: str,
    url: str,
    throttle: Throttle,
    on_attempt: AttemptSink | None = None,
    looked: _Looked | None = None,
) -> int | None:
    """Fetch every needed OID of ``identifier`` from ``url`` in one request (S5.2).

    Returns how many OIDs arrived (0 when the fetch failed: a :class:`FetchFailed` is logged,
    never raised), or None when the domain had no capacity left at the moment of starting
    (S6.4) and nothing was attempted. After a fetch that brought anything, releases what is now
    satisfiable (S5.4). The request's end is reported to the throttle with the URL and the
    reason (S18.2), and the whole attempt to ``on_attempt``. Any other exception is a bug and
    propagates, after the request's slot was given back.
    """
    domain = extract_domain(url)
    if domain is None:
        return 0
    data = ctx.fetch_repository_data(identifier) if looked is None else looked.data
    target = ctx.find_target_repo(data)
    if target is None:
        logger.debug("%s: no target repository on disk", identifier)
        return 0
    needed = sorted(ctx.collect_needed_oids(identifier) if looked is None else looked.needed)
    if not needed:
        return 0
    if not throttle.start_request(domain):
        logger.debug("%s: %s became throttled before the fetch", identifier, domain)
        return None
    result: FetchResult | None = None
    failure: FetchFailed | None = None
    reason: str | None = "error"  # left so only when the port raised a bug
    slot = _Slot(throttle, domain, url)
    try:
        try:
            result = ctx.fetch_oids(target, url, needed, on_transfer_end=slot.transfer_ended)
        except FetchFailed as exc:
            failure = exc
            logger.debug("%s: %s", identifier, exc)  # the Scheduler decides on a WARNING
        absent = result is None or not result.nothing_absent
        reason = _reason(result, failure) if absent else NOTHING_ABSENT
    finally:
        slot.done(reason)
    if reason == NOTHING_ABSENT:
        return _release_present(ctx, identifier, url, looked)
    fetched = len(result.oids) if result is not None else 0
    done = _NOTHING_RELEASED
    if fetched:
        logger.debug("%s: fetched %d OIDs from %s", identifier, fetched, url)
        done = ctx.process_satisfiable_events(identifier)
    elif failure is None:
        logger.debug("%s: %s had none of the %d needed OIDs", identifier, url, len(needed))
    if on_attempt is not None:
        on_attempt(_attempt(identifier, url, result, failure, done))
    return fetched


def _release_present(ctx: SyncContext, identifier: str, url: str, looked: _Looked | None) -> int:
    """Everything needed is already here (a push, a copy, an earlier fetch whose release
    failed): release, awaited, and hand the answer to the sync. No attempt is recorded — the
    remote saw nothing (S18.1), and the domain counts no request (S6.1). Seen before: every
    retry of such a sync recorded a "released, 0 objects" attempt per URL it walked."""
    logger.debug("%s: nothing absent, no request to %s; releasing", identifier, url)
    done = ctx.process_satisfiable_events(identifier)
    if looked is not None:
        looked.present = done
    return 0


class _Slot:
    """One request's throttle slot, given back exactly once whatever happens (S6.1, S6.4):
    at the transfer's end if the port reports it, else when the request ends (error, deadline,
    cancel included). The end of the request is reported in any case, with its reason (S18.2);
    ``freed`` tells the throttle whether that report still carries the slot."""

    __slots__ = ("throttle", "domain", "url", "freed", "reported")

    def __init__(self, throttle: Throttle, domain: str, url: str) -> None:
        self.throttle, self.domain, self.url = throttle, domain, url
        self.freed = False
        self.reported = False

    def transfer_ended(self) -> None:
        if self.freed or self.reported:  # a late or repeated report frees nothing twice
            return
        self.freed = True
        self.throttle.transfer_ended(self.domain, self.url)

    def done(self, reason: str | None) -> None:
        if self.reported:
            return
        self.reported = True
        self.throttle.complete_request(self.domain, self.url, reason, self.freed)


def _reason(result: FetchResult | None, failure: FetchFailed | None) -> str | None:
    """Why a request did not bring everything (S18.1); None when it did."""
    if failure is not None:
        return failure.reason
    if result is not None and result.missing:
        return MISSING_OBJECTS
    return None


def _attempt(
    identifier: str,
    url: str,
    result: FetchResult | None,
    failure: FetchFailed | None,
    done: ProcessResult,
) -> FetchAttempted:
    if result is None:
        assert failure is not None
        return FetchAttempted(
            identifier,
            url,
            outcome="failed",
            reason=failure.reason,
            detail=failure.detail,
            started=failure.started,
            seconds=failure.seconds,
        )
    fetched = len(result.oids)
    outcome = RELEASED if not result.missing else "partial" if fetched else "failed"
    reason, detail = _reason(result, None), ""
    if reason is None and done.errors:  # all arrived, the release failed: retried (S5.3)
        reason, detail = RELEASE_FAILED, done.errors[0]
    return FetchAttempted(
        identifier,
        url,
        outcome=outcome,
        reason=reason,
        detail=detail,
        fetched=fetched,
        missing=result.missing,
        released=done.states_released + done.prs_released,
        pack_bytes=result.pack_bytes,
        started=result.started,
        seconds=result.seconds,
    )


def sync_identifier(
    ctx: SyncContext,
    identifier: str,
    throttle: Throttle,
    *,
    skip_urls: Iterable[str] = (),
    on_attempt: AttemptSink | None = None,
    release_first: Callable[[str], object] | None = None,
) -> bool:
    """One sync attempt for an identifier; True when nothing is left to fetch or release (S5.3).

    First releases whatever the disk already satisfies (data may have come by a push or by a
    copy into another owner's repository), then walks untried URLs on non-throttled domains,
    releasing after each fetch. When only throttled domains remain, the identifier is queued
    on each of them with the URLs of that domain already tried, and False is returned; so it
    is on every domain whose slot it lost to a concurrent fetch, throttled or not by then.
    ``skip_urls`` count as tried from the start (refused by policy earlier: S18.2), also for
    the domains' queues.

    ``release_first`` does that first release instead of ``ctx.process_satisfiable_events``:
    a FetchActor hands it to the Releaser without waiting for the answer (nothing here reads
    it; the releases after each fetch are still awaited, S5.4). Waiting was one ask of the four
    per identifier (P4) and delayed every sync's first request (P1's wait).

    When nothing is left to fetch but events still wait, the sync is complete only if a
    release pass it awaited reported no errors (*deviation* from S5.3, which calls it complete
    as soon as nothing is needed): otherwise a release that failed with every object present
    (a ref update, a copy, a save) was never tried again, and the held event waited for a new
    event of the identifier or a restart while its lifetime ran.
    """
    first = (release_first or ctx.process_satisfiable_events)(identifier)
    latest = first if isinstance(first, ProcessResult) else None  # a tell answers nothing
    tried: set[str] = set(skip_urls)
    deferred: set[str] = set()
    while (looked := _look(ctx, identifier)) and (
        url := _pick(looked, identifier, None, tried | deferred, throttle)
    ):  # sync_identifier_next_url, its answers kept for the fetch
        fetched = sync_identifier_from_url(ctx, identifier, url, throttle, on_attempt, looked)
        if fetched is None:
            deferred.add(url)  # lost the slot to a concurrent fetch: leave it for the queue
            continue
        if looked.present is not None:  # all here: no other URL has more to give
            return not ctx.has_pending_events(identifier) or _released(
                ctx, identifier, looked.present
            )
        tried.add(url)
        if not ctx.has_pending_events(identifier):
            return True
        if not ctx.collect_needed_oids(identifier):
            return _released(ctx, identifier, None)  # S5.3: "then process once more"
        if fetched:
            latest = None  # that fetch's release pass was the last; its answer is not here
    if not ctx.has_pending_events(identifier):
        return True
    if not ctx.collect_needed_oids(identifier):
        return _released(ctx, identifier, latest)
    queued: set[str] = set()
    for info in get_throttled_domains_with_untried_urls(ctx, identifier, tried, throttle):
        logger.debug("%s: queued on throttled domain %s", identifier, info.domain)
        throttle.enqueue_identifier(info.domain, identifier, info.tried_urls_for_domain)
        queued.add(info.domain)
    for domain in sorted(_domains(deferred) - queued):
        # Its slot went to a concurrent fetch (S6.4), so the domain was throttled when this
        # sync wanted it; by now a slot may have freed and ``is_throttled`` says no. Queued
        # anyway: the DomainThrottle starts it at once if it can. Left unqueued, the URL waited
        # for the Scheduler's backoff (20 s and more, seen in test_system_e2e once FetchActors
        # started in one burst).
        logger.debug("%s: queued on %s, whose slot it lost", identifier, domain)
        done = frozenset(u for u in tried if extract_domain(u) == domain)
        throttle.enqueue_identifier(domain, identifier, done)
    return False


def _released(ctx: SyncContext, identifier: str, latest: ProcessResult | None) -> bool:
    """Nothing is left to fetch and events still wait: True when the last release pass (awaited
    now unless this sync already holds its answer) reported no errors. On errors the sync is
    incomplete and S4.1's backoff tries again; the Releaser logged each error."""
    done = ctx.process_satisfiable_events(identifier) if latest is None else latest
    if done.errors:
        logger.debug("%s: release failed, retried with backoff: %s", identifier, done.errors[0])
        return False
    return True


def _domains(urls: Iterable[str]) -> set[str]:
    return {d for d in map(extract_domain, urls) if d is not None}


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
