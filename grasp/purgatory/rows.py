"""Purgatory's entries as rows of the event database and back (S9.1, grasp/store/held.py).

In memory a deadline is a monotonic instant (expiry must not jump with the wall clock); in a
row it is wall-clock Unix seconds (the monotonic clock restarts with the process). The two
conversions here are the only place where one becomes the other.

Rows are read back with :meth:`Event.from_trusted_json`: the relay verified each event when it
arrived and the database is its own, as for stored events. A row that the current rules refuse
(a rule tightened since it was written, e.g. the identifier length of S14.2) is reported, not
loaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from grasp.nostr import kinds
from grasp.nostr.event import Event
from grasp.nostr.nip34 import Announcement, PullRequest, RepositoryState
from grasp.purgatory.entries import HeldAnnouncement, HeldPlaceholder, HeldPr, HeldState, Source
from grasp.store.held import HeldRow, PlaceholderRow

Clock = Callable[[], float]
Entry = HeldState | HeldPr | HeldAnnouncement


@dataclass(frozen=True)
class Clocks:
    """The store's two clocks: ``now`` (monotonic, in memory) and ``wall`` (rows)."""

    now: Clock
    wall: Clock

    def to_wall(self, instant: float) -> float:
        return self.wall() + (instant - self.now())

    def to_instant(self, wall_time: float) -> float:
        return self.now() + (wall_time - self.wall())


def event_of(entry: Entry) -> Event:
    if isinstance(entry, HeldState):
        return entry.state.event
    if isinstance(entry, HeldPr):
        return entry.pr.event
    return entry.announcement.event


def identifier_of(entry: Entry) -> str:
    if isinstance(entry, HeldState):
        return entry.state.identifier
    if isinstance(entry, HeldPr):
        return entry.pr.identifier
    return entry.announcement.identifier


def held_row(entry: Entry, clocks: Clocks) -> HeldRow:
    event = event_of(entry)
    return HeldRow(
        event.id,
        event.kind,
        identifier_of(entry),
        entry.source.value,
        clocks.to_wall(entry.expires_at),
        event.to_json_text(),
    )


def entry_from_row(row: HeldRow, clocks: Clocks) -> Entry:
    """The entry a row holds; raises ``ValueError`` (``Nip34Error`` included) when it cannot
    be one any more."""
    event = Event.from_trusted_json(json.loads(row.json))
    if event.id != row.event_id:
        raise ValueError(f"held row {row.event_id} holds event {event.id}")
    source, expires_at = Source(row.source), clocks.to_instant(row.expires_at)
    if event.kind == kinds.REPO_STATE:
        return HeldState(RepositoryState.from_event(event), source, expires_at)
    if event.kind in kinds.PR_KINDS:
        pr = PullRequest.from_event(event)
        return HeldPr(pr.event_id, pr.commit, pr, source, expires_at)
    if event.kind == kinds.REPO_ANNOUNCEMENT:
        return HeldAnnouncement(Announcement.from_event(event), source, expires_at)
    raise ValueError(f"held row {row.event_id} has kind {event.kind}, which is never held")


def placeholder_row(
    entry: HeldPlaceholder, clocks: Clocks, expired: bool = False
) -> PlaceholderRow:
    return PlaceholderRow(
        entry.event_id,
        entry.owner,
        entry.identifier,
        entry.commit,
        clocks.to_wall(entry.expires_at),
        expired,
    )


def placeholder_from_row(row: PlaceholderRow, clocks: Clocks) -> HeldPlaceholder:
    return HeldPlaceholder(
        row.event_id, row.commit, row.owner, row.identifier, clocks.to_instant(row.expires_at)
    )
