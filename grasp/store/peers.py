"""Peer rows of the event store (S17.1, S17.4): the relays this one syncs with, and their health.

Peers are discovered from the ``relays`` tags of accepted announcements, which may be held in
purgatory and gone after a restart, so a discovered peer would be forgotten with them; and a
peer on the naughty list must stay there across a restart or every restart would hammer it
again. So each peer is one row, written when it is discovered and when its health changes
(never per event: ``events_received`` is written with the next health change or at stop).

Both engines share this module's SQL (``?`` placeholders; PostgreSQL's store rewrites them).
Times are wall-clock Unix seconds (a restart keeps them meaningful).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LOAD_PEERS", "MAX_PEER_ROWS", "PeerRow", "UPSERT_PEER", "peer_params", "peer_row"]

#: A flood of announcements naming made-up relays must not grow the table without bound.
MAX_PEER_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class PeerRow:
    """One peer as stored. ``origin`` says why it is a peer: ``announcement``, ``bootstrap``."""

    url: str
    origin: str
    discovered_at: float
    last_error: str | None = None
    failures: int = 0
    next_attempt_at: float | None = None
    naughty_until: float | None = None
    events_received: int = 0
    last_reconciled_at: float | None = None


_COLUMNS = (
    "url, origin, discovered_at, last_error, failures, next_attempt_at, naughty_until, "
    "events_received, last_reconciled_at"
)

UPSERT_PEER = f"""
INSERT INTO peers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (url) DO UPDATE SET
    origin = excluded.origin,
    last_error = excluded.last_error,
    failures = excluded.failures,
    next_attempt_at = excluded.next_attempt_at,
    naughty_until = excluded.naughty_until,
    events_received = excluded.events_received,
    last_reconciled_at = excluded.last_reconciled_at
"""

LOAD_PEERS = f"SELECT {_COLUMNS} FROM peers ORDER BY discovered_at, url LIMIT {MAX_PEER_ROWS}"


def peer_params(row: PeerRow) -> tuple[object, ...]:
    return (
        row.url,
        row.origin,
        row.discovered_at,
        row.last_error,
        row.failures,
        row.next_attempt_at,
        row.naughty_until,
        row.events_received,
        row.last_reconciled_at,
    )


def peer_row(values: tuple[object, ...]) -> PeerRow:
    url, origin, discovered, error, failures, next_at, naughty, received, reconciled = values
    return PeerRow(
        str(url),
        str(origin),
        float(discovered),  # type: ignore[arg-type]
        None if error is None else str(error),
        int(failures),  # type: ignore[call-overload]
        None if next_at is None else float(next_at),  # type: ignore[arg-type]
        None if naughty is None else float(naughty),  # type: ignore[arg-type]
        int(received),  # type: ignore[call-overload]
        None if reconciled is None else float(reconciled),  # type: ignore[arg-type]
    )
