"""The sync history: why an identifier is still held (S18).

Pure policy, owned by the Scheduler and fed by the ``FetchAttempted`` each FetchActor tells it
after every request. Per identifier it keeps the last ``max_attempts`` attempts and the latest
word on each URL; at most ``max_identifiers`` identifiers are kept (the least recently
attempted goes first), so memory is bounded whatever the remotes do.

It also decides what an operator must be told (S18.2), so the log says each thing once:

* a URL refused by the fetch policy is *permanent* for that (identifier, URL): a WARNING once,
  and :meth:`SyncHistory.refused` lists it so the next sync skips it — it is never contacted
  again (a new event's new URLs are new pairs and are tried);
* ``missing_objects`` (the server answered without the needed commits — they were not pushed
  there) is a WARNING once per (identifier, URL);
* any other failure is a WARNING when the (identifier, URL)'s reason changed since the last
  one logged, not on every retry; a success resets it, so a relapse is logged again.

Everything else is DEBUG. The clock is the caller's (``now``); times are its readings.
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from messages.history import AttemptRecord, IdentifierHistory, UrlRecord
from messages.scheduler import RELEASE_FAILED, FetchAttempted

from .context import MISSING_OBJECTS
from .queue import SyncQueueEntry

__all__ = ["Notice", "SyncHistory", "known", "most_relevant"]

POLICY = "policy"
#: URLs remembered per identifier; an announcement lists a handful, a hostile one is capped.
MAX_URLS = 64


@dataclass(frozen=True, slots=True)
class Notice:
    """A log line the history decided on: its level and text."""

    level: int
    text: str


@dataclass(slots=True)
class _Url:
    """The latest word on one (identifier, URL)."""

    attempts: int = 0
    outcome: str = "failed"
    reason: str | None = None
    detail: str = ""
    missing: int = 0
    at: float = 0.0
    permanent: bool = False
    logged: str | None = None  # the transient reason last logged at WARNING
    missing_warned: bool = False

    def update(self, attempt: FetchAttempted, at: float) -> None:
        self.attempts += 1
        self.outcome, self.reason, self.detail = attempt.outcome, attempt.reason, attempt.detail
        self.missing, self.at = attempt.missing, at


@dataclass(slots=True)
class _Kept:
    """One identifier's history: attempts (oldest first), URLs (first seen first)."""

    attempts: deque[tuple[float, FetchAttempted]]
    urls: dict[str, _Url] = field(default_factory=dict)
    requests: int = 0
    last: float = 0.0


class SyncHistory:
    """Identifier → its last attempts and URLs, bounded; and what each attempt is worth saying."""

    def __init__(self, max_attempts: int, max_identifiers: int) -> None:
        if max_attempts < 1 or max_identifiers < 1:
            raise ValueError("history bounds must be at least 1")
        self.max_attempts = max_attempts
        self.max_identifiers = max_identifiers
        self._kept: OrderedDict[str, _Kept] = OrderedDict()  # least recently attempted first

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, identifier: object) -> bool:
        return identifier in self._kept

    def record(self, attempt: FetchAttempted, now: float) -> Notice:
        """Keep ``attempt`` and say what it is worth telling the operator (S18.2)."""
        at = attempt.started if attempt.started is not None else now - (attempt.seconds or 0.0)
        kept = self._kept.get(attempt.identifier)
        if kept is None:
            kept = self._kept[attempt.identifier] = _Kept(deque(maxlen=self.max_attempts))
        self._kept.move_to_end(attempt.identifier)
        kept.attempts.append((at, attempt))
        kept.requests += 1
        kept.last = max(kept.last, at)
        url = kept.urls.get(attempt.url)
        if url is None:
            url = kept.urls[attempt.url] = _Url()
            _bound_urls(kept.urls)
        url.update(attempt, at)
        while len(self._kept) > self.max_identifiers:
            self._kept.popitem(last=False)
        return _notice(attempt, url)

    def refused(self, identifier: str) -> frozenset[str]:
        """The URLs the fetch policy refused for ``identifier``: never contacted again."""
        kept = self._kept.get(identifier)
        if kept is None:
            return frozenset()
        return frozenset(u for u, state in kept.urls.items() if state.permanent)

    def last_attempt(self, identifier: str) -> float | None:
        kept = self._kept.get(identifier)
        return kept.last if kept is not None else None

    def identifiers(self) -> Iterable[str]:
        return self._kept.keys()

    def report(
        self, identifier: str, now: float, entry: SyncQueueEntry | None
    ) -> IdentifierHistory:
        """What is known of ``identifier``: its queue entry (None: not queued) and history."""
        kept = self._kept.get(identifier)
        if entry is None:
            state, count, next_in = "done", 0, None
        else:
            state = "syncing" if entry.in_progress else "queued"
            count = entry.attempt_count
            next_in = None if entry.in_progress else round(entry.next_attempt - now, 3)
        if kept is None:
            return IdentifierHistory(identifier, state, count, next_in)
        attempts = tuple(
            _attempt_record(a, round(now - at, 3)) for at, a in reversed(kept.attempts)
        )
        urls = tuple(_url_record(u, s, round(now - s.at, 3)) for u, s in kept.urls.items())
        return IdentifierHistory(identifier, state, count, next_in, kept.requests, attempts, urls)


def most_relevant(queued: Mapping[str, float], history: SyncHistory, limit: int) -> list[str]:
    """Up to ``limit`` identifiers to show (S18.1: "why is it still held?"): queued ones that
    were attempted, most recently attempted first; then queued ones not attempted yet, soonest
    next attempt (``queued`` maps identifier to it) first; then the rest of the history. Ties go
    by identifier, so the answer is the same in every run (replay). Cost: a sort of the history
    (bounded) and one pass over the queue."""
    attempted = {i: history.last_attempt(i) or 0.0 for i in history.identifiers()}

    def recent_first(ids: Iterable[str]) -> list[str]:
        return sorted(ids, key=lambda i: (-attempted[i], i))

    chosen = recent_first(i for i in attempted if i in queued)[:limit]
    if len(chosen) < limit:
        waiting = ((t, i) for i, t in queued.items() if i not in attempted)
        chosen += [i for _, i in heapq.nsmallest(limit - len(chosen), waiting)]
    if len(chosen) < limit:
        chosen += recent_first(i for i in attempted if i not in queued)[: limit - len(chosen)]
    return chosen


def known(queued: Mapping[str, float], history: SyncHistory) -> int:
    """How many identifiers are queued or have a history."""
    return len(queued) + sum(1 for i in history.identifiers() if i not in queued)


def _bound_urls(urls: dict[str, _Url]) -> None:
    while len(urls) > MAX_URLS:
        oldest = min(urls, key=lambda u: urls[u].at)
        del urls[oldest]


def _notice(attempt: FetchAttempted, url: _Url) -> Notice:
    identifier, where, reason = attempt.identifier, attempt.url, attempt.reason
    if reason == POLICY:
        first, url.permanent = not url.permanent, True
        return Notice(
            logging.WARNING if first else logging.DEBUG,
            f"{identifier}: not fetching from {where}, the fetch policy refuses it: "
            f"{attempt.detail} (S3.4); it is not tried again for {identifier}",
        )
    if reason == MISSING_OBJECTS:
        first, url.missing_warned = not url.missing_warned, True
        return Notice(
            logging.WARNING if first else logging.DEBUG,
            f"{identifier}: {where} answered without {attempt.missing} of the needed objects "
            f"(were they pushed there?); {attempt.fetched} arrived",
        )
    if reason == RELEASE_FAILED:  # the URL did its part; the Releaser warned of the error
        url.logged = None
        return Notice(
            logging.DEBUG,
            f"{identifier}: {where}: {attempt.fetched} objects arrived, releasing failed "
            f"({attempt.detail}); retried with backoff",
        )
    if reason is not None:
        changed, url.logged = url.logged != reason, reason
        detail = f": {attempt.detail}" if attempt.detail else ""
        return Notice(
            logging.WARNING if changed else logging.DEBUG,
            f"{identifier}: fetch from {where} failed ({reason}){detail}; retried with backoff",
        )
    url.logged = None
    return Notice(
        logging.DEBUG,
        f"{identifier}: {where}: {attempt.fetched} objects arrived, "
        f"{attempt.released} events released",
    )


def _attempt_record(a: FetchAttempted, ago: float) -> AttemptRecord:
    return AttemptRecord(
        a.url,
        a.queue,
        a.outcome,
        a.reason,
        a.detail,
        a.fetched,
        a.missing,
        a.released,
        a.pack_bytes,
        a.seconds,
        ago,
    )


def _url_record(url: str, s: _Url, ago: float) -> UrlRecord:
    return UrlRecord(url, s.attempts, s.outcome, s.reason, s.detail, s.missing, ago, s.permanent)
