"""The historic phase of one sync-source connection (S10.7), as pure state: no I/O, no clock.

Two problems are solved here.

**Paging.** A relay answers a REQ with at most its ``limit`` clamp of stored events, newest first
(ours clamps to 500, S10.1), so one REQ is not a history. After each page's EOSE we ask again with
``until`` = the oldest ``created_at`` of that page. ``until`` is inclusive, so the events of that
second come again; they are recognised by id and do not count as progress. The walk ends with the
first page that brings nothing new, which also ends it when more events share one second than
the source returns per page (those cannot be reached with NIP-01 filters at all). ``max_pages``
bounds the walk whatever the source does.

**Dependency order.** The write policy accepts a state (30618) only after the announcement
(30617) that authorises its author, and related events (1617, 1621, 1630-1633, ...) only when
they reference an accepted announcement or event. The source delivers newest first, the exact
opposite of what works. So the history is buffered and fed sorted by
:func:`dependency_key`: announcements, then states, then the events that start a thread (patch,
PR, issue), then the ones that answer one (PR update, status); oldest first within each group.
Live events that arrive while paging join the buffer, so they cannot overtake their history.
Timestamps cannot order announcements among themselves: a maintainer's announcement is accepted
only once the owner's that lists the maintainer is (S10.3, S10.4), whichever is older. So
:func:`offer_in_order` offers a refused announcement again once another one of its identifier
was accepted, pass after pass (bounded by the depth of a maintainer chain we care about).

Memory is bounded: when the buffer holds ``max_buffered`` events or about
``max_buffered_bytes`` of event text, it is handed out (sorted) at once and paging continues.
Dependency order then holds within each batch only — an event whose announcement comes in a
later (older) batch is refused until a later full walk — so the default bounds are generous.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from grasp.nostr import kinds
from grasp.nostr.event import Event
from grasp.nostr.results import Result

__all__ = [
    "ANNOUNCEMENT_PASSES",
    "DEFAULT_MAX_BUFFERED",
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_PAGES",
    "HistorySync",
    "dependency_key",
    "offer_in_order",
    "source_filter",
]

#: A whole forge's history normally (NIP-34 events are a few KiB, patches more).
DEFAULT_MAX_BUFFERED = 20_000
#: What a hostile source can make us hold: events of up to max_message_bytes each add up fast.
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_PAGES = 10_000
#: Passes over refused announcements: a maintainer chain deeper than this is not followed.
ANNOUNCEMENT_PASSES = 8

_THREAD_STARTERS = frozenset({kinds.PATCH, kinds.PULL_REQUEST, kinds.ISSUE})


def dependency_key(event: Event) -> tuple[int, int, str]:
    """Sort key that feeds what other events depend on first (see the module docstring)."""
    if event.kind == kinds.REPO_ANNOUNCEMENT:
        group = 0
    elif event.kind == kinds.REPO_STATE:
        group = 1
    elif event.kind in _THREAD_STARTERS:
        group = 2
    else:
        group = 3
    return group, event.created_at, event.id


def offer_in_order(
    events: Sequence[Event], offer: Callable[[Event], Result], passes: int = ANNOUNCEMENT_PASSES
) -> Iterator[tuple[Event, Result]]:
    """Offer a batch sorted by :func:`dependency_key`; yield each event with its final result.

    A refused announcement is offered again after a pass accepted another announcement with the
    same identifier (maintainer sets are per identifier, S10.3) — the policy refuses one that
    neither lists us nor is a maintainer's with ``blocked:`` (S10.4), so any refusal counts. The
    other events are offered once, in order, after all announcements. Lazy, so the caller can
    stop between two offers.
    """
    pending = [e for e in events if e.kind == kinds.REPO_ANNOUNCEMENT]
    for attempt in range(1, passes + 1):
        refused: list[tuple[Event, Result]] = []
        accepted: set[str] = set()
        for event in pending:
            result = offer(event)
            if result.accepted:
                accepted.add(_identifier(event))
                yield event, result
            else:
                refused.append((event, result))
        again = accepted if attempt < passes else set()
        for event, result in refused:
            if _identifier(event) not in again:
                yield event, result
        pending = [event for event, _ in refused if _identifier(event) in again]
        if not pending:
            break
    for event in events:
        if event.kind != kinds.REPO_ANNOUNCEMENT:
            yield event, offer(event)


def _identifier(event: Event) -> str:
    return next((tag[1] for tag in event.tags if tag and tag[0] == "d" and len(tag) > 1), "")


def source_filter(
    kind_list: Sequence[int], since: int | None = None, until: int | None = None
) -> dict[str, Any]:
    """The NIP-01 filter asked of a source; ``since``/``until`` only when set."""
    flt: dict[str, Any] = {"kinds": list(kind_list)}
    if since is not None:
        flt["since"] = since
    if until is not None:
        flt["until"] = until
    return flt


class HistorySync:
    """Paging state and the sorted buffer of one connection's historic phase.

    The caller sends :meth:`first_filter` as the live subscription (its stored part is page one),
    passes every event of the current page to :meth:`add_page_event` and every other event to
    :meth:`add_live_event`, calls :meth:`end_page` at the page's EOSE and sends the filter it
    returns as the next page, and when it returns None feeds :meth:`drain`. Each ``add_*`` may
    return a batch to feed at once (the buffer was full); usually it returns nothing.
    """

    def __init__(
        self,
        kind_list: Sequence[int],
        since: int | None,
        *,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        if min(max_buffered, max_buffered_bytes, max_pages) < 1:
            raise ValueError("max_buffered, max_buffered_bytes and max_pages must be at least 1")
        self.kinds = tuple(kind_list)
        self.since = since
        self.max_buffered = max_buffered
        self.max_buffered_bytes = max_buffered_bytes
        self.max_pages = max_pages
        self.pages = 0
        self.done = False
        #: Every event added so far, historic or live (for the resume point and the report).
        self.events = 0
        #: Highest created_at of any event added (the caller's resume point once caught up).
        self.newest: int | None = None
        #: True when the walk stopped at max_pages rather than at the end of the history.
        self.truncated = False
        self._buffer: dict[str, Event] = {}
        self._buffer_bytes = 0
        self._until: int | None = None
        self._seen_at_until: set[str] = set()
        self._page_new = 0
        self._page_oldest: int | None = None
        self._page_ids_at_oldest: set[str] = set()

    def first_filter(self) -> dict[str, Any]:
        return source_filter(self.kinds, self.since)

    def add_page_event(self, event: Event) -> list[Event]:
        """An event of the page being read (before its EOSE)."""
        if event.id not in self._seen_at_until:
            self._page_new += 1
        if self._page_oldest is None or event.created_at < self._page_oldest:
            self._page_oldest = event.created_at
            self._page_ids_at_oldest = {event.id}
        elif event.created_at == self._page_oldest:
            self._page_ids_at_oldest.add(event.id)
        return self._add(event)

    def add_live_event(self, event: Event) -> list[Event]:
        """An event that arrived on the live subscription while paging."""
        return self._add(event)

    def end_page(self) -> dict[str, Any] | None:
        """The page's EOSE: the filter of the next page, or None when the history is complete."""
        if self.done:
            return None
        self.pages += 1
        new, oldest = self._page_new, self._page_oldest
        if new == 0 or oldest is None or self.pages >= self.max_pages:
            self.done = True
            self.truncated = new > 0 and self.pages >= self.max_pages
            return None
        if oldest == self._until:
            self._seen_at_until |= self._page_ids_at_oldest
        else:
            self._seen_at_until = self._page_ids_at_oldest
        self._until = oldest
        self._page_new, self._page_oldest, self._page_ids_at_oldest = 0, None, set()
        return source_filter(self.kinds, self.since, oldest)

    def drain(self) -> list[Event]:
        """Everything buffered, in dependency order; the buffer is empty afterwards."""
        batch = sorted(self._buffer.values(), key=dependency_key)
        self._buffer.clear()
        self._buffer_bytes = 0
        return batch

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _add(self, event: Event) -> list[Event]:
        if event.id in self._buffer:
            return []
        self._buffer[event.id] = event
        self._buffer_bytes += approximate_size(event)
        self.events += 1
        if self.newest is None or event.created_at > self.newest:
            self.newest = event.created_at
        full = (
            len(self._buffer) >= self.max_buffered or self._buffer_bytes >= self.max_buffered_bytes
        )
        return self.drain() if full else []


def approximate_size(event: Event) -> int:
    """Bytes of text an event holds (content and tags, plus the fixed hex fields), roughly."""
    return 400 + len(event.content) + sum(len(value) + 4 for tag in event.tags for value in tag)
