"""Purgatory in the event database (S9.1): the rows of held events and one unit of work on them.

Every event the relay answered ``OK true "purgatory: ..."`` for, every placeholder of a push
that came before its PR event, and the 7-day memory of expired ids (S1.4) live in four tables
of the event database, next to the stored events, so that one transaction can store a released
event and drop its held row (``EventStore.save(event, held=...)``), and no stop of the process
— SIGKILL included — loses what a client was promised. The in-memory
:class:`~grasp.purgatory.store.PurgatoryStore` is a cache of these rows, rebuilt at start.

Times in rows are wall-clock Unix seconds (a monotonic clock restarts with the process). The
time the relay was down is not counted against a lifetime: ``EventStore.resume`` moves every
deadline by the gap since the last heartbeat of any node (docs/durability.rst, rule D3).

The DML is the same on both engines (SQLite >= 3.24 and PostgreSQL share ``ON CONFLICT``), so it
is written once here with a parameter marker per engine; the tables themselves are in
``schema.py`` (SQLite) and migration 3 of ``pg_schema.py`` (PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

__all__ = [
    "ExpiredRow",
    "HeldChanges",
    "HeldDelta",
    "HeldRow",
    "HeldSnapshot",
    "PlaceholderKey",
    "PlaceholderRow",
    "held_statements",
]

#: (event id, owner pubkey, identifier): one placeholder per event id *and repository*.
PlaceholderKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class HeldRow:
    """One held event: a state, PR, PR update or announcement in announcement purgatory."""

    event_id: str
    kind: int
    #: The identifier it waits under (``d``, or a PR's first ``a`` identifier); for reading.
    identifier: str
    #: ``"direct"`` (a client of this relay) or ``"sync"`` (a sync source), S4.2.
    source: str
    #: Wall-clock deadline of its lifetime (S1.4), Unix seconds.
    expires_at: float
    #: The event's JSON text as received (it was verified then; it is trusted on load).
    json: str


@dataclass(frozen=True, slots=True)
class PlaceholderRow:
    """A push to ``refs/nostr/<event_id>`` of ``owner``'s ``identifier`` before its PR event
    (S1.3). ``expired`` rows have outlived their lifetime (or lost to a signed PR event with
    another commit, S14.3): their ref and objects await the Releaser's cleanup."""

    event_id: str
    #: Owner pubkey (hex) of the repository it was pushed to; ``""`` when not known (a
    #: placeholder imported from a version-1 ``purgatory-state.json``).
    owner: str
    identifier: str
    commit: str
    expires_at: float
    expired: bool = False

    @property
    def key(self) -> PlaceholderKey:
        return (self.event_id, self.owner, self.identifier)


@dataclass(frozen=True, slots=True)
class ExpiredRow:
    """An event id that expired from purgatory (S1.4), remembered 7 days."""

    event_id: str
    expired_at: float


@dataclass(frozen=True)
class HeldChanges:
    """What one admission, release or sweep changes in purgatory's tables, applied in one
    transaction (together with a stored event when given to ``EventStore.save``).

    Applied in field order: rows are dropped before rows are added, so a replacement (an
    announcement's newer version, a PR taking over a placeholder) is one unit of work.
    """

    unhold: tuple[str, ...] = ()
    drop_placeholders: tuple[PlaceholderKey, ...] = ()
    #: Forget these ids' expiry (an expired event that a user submitted again is held again).
    unexpire: tuple[str, ...] = ()
    #: New held events; an id that is already held is left as it is.
    hold: tuple[HeldRow, ...] = ()
    #: (event id, new deadline) of held events whose lifetime restarted.
    extend: tuple[tuple[str, float], ...] = ()
    #: Placeholders written whole (insert, or replace the row of the same key).
    placeholders: tuple[PlaceholderRow, ...] = ()
    expire: tuple[ExpiredRow, ...] = ()
    #: Forget expired ids remembered since before this wall-clock time.
    forget_expired_before: float | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) not in ((), None) for f in fields(self))

    def merged(self, other: HeldChanges) -> HeldChanges:
        """Both units of work as one (``other``'s forget horizon wins when it has one)."""
        values: dict[str, object] = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "forget_expired_before":
                values[f.name] = theirs if theirs is not None else mine
            else:
                values[f.name] = (*mine, *theirs)
        return HeldChanges(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class HeldSnapshot:
    """Everything purgatory's tables hold, in arrival order: what a start rebuilds from."""

    events: tuple[HeldRow, ...] = ()
    placeholders: tuple[PlaceholderRow, ...] = ()
    expired: tuple[ExpiredRow, ...] = ()


Statement = tuple[str, list[tuple[object, ...]]]


def held_statements(changes: HeldChanges, mark: str) -> Iterator[Statement]:
    """The (SQL, rows) pairs that apply ``changes``, for ``executemany``; ``mark`` is the
    engine's parameter marker (``?`` for sqlite3, ``%s`` for psycopg)."""

    def sql(text: str) -> str:
        return text.replace("?", mark)

    if changes.unhold:
        yield sql("DELETE FROM held_events WHERE event_id = ?"), [(i,) for i in changes.unhold]
    if changes.drop_placeholders:
        yield (
            sql(
                "DELETE FROM held_placeholders WHERE event_id = ? AND owner = ? AND identifier = ?"
            ),
            list(changes.drop_placeholders),
        )
    if changes.unexpire:
        yield sql("DELETE FROM expired_ids WHERE event_id = ?"), [(i,) for i in changes.unexpire]
    if changes.hold:
        yield (
            sql(
                "INSERT INTO held_events (event_id, kind, identifier, source, expires_at, json) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"
            ),
            [
                (r.event_id, r.kind, r.identifier, r.source, r.expires_at, r.json)
                for r in changes.hold
            ],
        )
    if changes.extend:
        yield (
            sql("UPDATE held_events SET expires_at = ? WHERE event_id = ?"),
            [(at, event_id) for event_id, at in changes.extend],
        )
    if changes.placeholders:
        yield (
            sql(
                "INSERT INTO held_placeholders "
                "(event_id, owner, identifier, commit_oid, expires_at, expired) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id, owner, identifier) DO UPDATE "
                "SET commit_oid = excluded.commit_oid, expires_at = excluded.expires_at, "
                "expired = excluded.expired"
            ),
            [
                (p.event_id, p.owner, p.identifier, p.commit, p.expires_at, int(p.expired))
                for p in changes.placeholders
            ],
        )
    if changes.expire:
        yield (
            sql(
                "INSERT INTO expired_ids (event_id, expired_at) VALUES (?, ?) "
                "ON CONFLICT (event_id) DO UPDATE SET expired_at = excluded.expired_at"
            ),
            [(r.event_id, r.expired_at) for r in changes.expire],
        )
    if changes.forget_expired_before is not None:
        yield (
            sql("DELETE FROM expired_ids WHERE expired_at < ?"),
            [(changes.forget_expired_before,)],
        )


#: Reading everything back, in arrival order (``seq``), engine-neutral.
@dataclass(frozen=True)
class HeldDelta:
    """What other processes changed in purgatory's tables since a version (S19.2): every key
    a change touched, and the current rows of those that still exist (absent = removed)."""

    event_ids: tuple[str, ...]
    placeholder_keys: tuple[PlaceholderKey, ...]
    expired_ids: tuple[str, ...]
    rows: HeldSnapshot


LOAD_EVENTS = (
    "SELECT event_id, kind, identifier, source, expires_at, json FROM held_events ORDER BY seq"
)
LOAD_PLACEHOLDERS = (
    "SELECT event_id, owner, identifier, commit_oid, expires_at, expired "
    "FROM held_placeholders ORDER BY seq"
)
LOAD_EXPIRED = "SELECT event_id, expired_at FROM expired_ids"
HEARTBEAT = (
    "INSERT INTO node_heartbeats (node, beat_at) VALUES (?, ?) "
    "ON CONFLICT (node) DO UPDATE SET beat_at = excluded.beat_at"
)
LAST_HEARTBEAT = "SELECT max(beat_at) FROM node_heartbeats"
FORGET_NODES = "DELETE FROM node_heartbeats WHERE beat_at < ?"
#: Nodes silent this long are forgotten at a start (their rows only grow the table).
NODE_MEMORY_SECS = 7 * 86400.0
#: Downtime is credited to these deadlines at start (expired placeholders have none left).
SHIFT_DEADLINES = (
    "UPDATE held_events SET expires_at = expires_at + ?",
    "UPDATE held_placeholders SET expires_at = expires_at + ? WHERE expired = 0",
)


def snapshot_from(events: list, placeholders: list, expired: list) -> HeldSnapshot:
    """A :class:`HeldSnapshot` from the rows of the three LOAD queries."""
    return HeldSnapshot(
        events=tuple(HeldRow(i, int(k), d, s, float(at), j) for i, k, d, s, at, j in events),
        placeholders=tuple(
            PlaceholderRow(i, o, d, c, float(at), bool(x)) for i, o, d, c, at, x in placeholders
        ),
        expired=tuple(ExpiredRow(i, float(at)) for i, at in expired),
    )
