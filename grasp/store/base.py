"""The one event store interface the relay uses, whatever the engine (S11, S19.1).

:class:`EventStore` is a :class:`typing.Protocol` with one documented method per operation
(nostr-rs-relay's ``NostrRepo`` habit): the relay, the release workflow and the repository index
depend on it, never on an engine. Two engines implement it with the same semantics, checked by
one contract suite (``tests/store/contract.py``): SQLite (:mod:`grasp.store.sqlite`, the embedded
default) and PostgreSQL (:mod:`grasp.store.postgres`, for a cluster of relay processes).

The result types every engine shares (:class:`SaveOutcome`, :class:`StoreError`) live here too,
so callers import nothing engine-specific; purgatory's rows (:mod:`grasp.store.held`) are part
of the same interface, because a held event and the stored event it becomes must change in one
transaction (S9.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from enum import Enum
from typing import Protocol, runtime_checkable

from grasp.nostr.event import Event
from grasp.nostr.filters import Filter
from grasp.nostr.results import Prefix, Result
from grasp.store.held import HeldChanges, HeldDelta, HeldSnapshot
from grasp.store.peers import PeerRow

#: NIP-01 ``limit`` is clamped to this many events per filter (S10.1).
DEFAULT_LIMIT_CAP = 500
#: S15.1: the referenced-ids index keeps this many targets; past it the target whose reference
#: was recorded longest ago is dropped first (a target referenced again counts as new). 100,000
#: rows are a few MiB on either engine.
DEFAULT_MAX_REFERENCES = 100_000


class StoreError(RuntimeError):
    """The database cannot be used: unreadable, unreachable, a newer schema, not a database."""


class SaveOutcome(Enum):
    """What :meth:`EventStore.save` did with one event."""

    SAVED = "saved"
    #: The same id is already stored.
    DUPLICATE = "duplicate"
    #: A replaceable/addressable event older than the stored version (or an equal-time one with a
    #: higher id): nothing changed.
    REPLACED_NEWER_EXISTS = "replaced-newer-exists"
    #: An accepted NIP-09 deletion by the same author already covers this event.
    DELETED_TARGET = "deleted-target"
    #: Ephemeral kinds (20000-29999) are relayed, never stored.
    EPHEMERAL = "ephemeral"

    @property
    def stored(self) -> bool:
        """Whether the event is now in the store and should be broadcast as new."""
        return self is SaveOutcome.SAVED

    def to_result(self) -> Result:
        """The NIP-01 ``OK`` answer a plain relay gives for this outcome."""
        if self is SaveOutcome.DUPLICATE:
            return Result.ok(Prefix.DUPLICATE, "already have this event")
        if self is SaveOutcome.REPLACED_NEWER_EXISTS:
            return Result.ok(Prefix.DUPLICATE, "have a newer version of this event")
        if self is SaveOutcome.DELETED_TARGET:
            return Result.reject(Prefix.INVALID, "accepted deletion request for this event")
        return Result.ok()


@runtime_checkable
class EventStore(Protocol):
    """NIP-01 event storage. Every method is safe to call from concurrent greenlets.

    Events given to :meth:`save` are already validated (id and signature); the store trusts
    its caller and keeps the JSON text it is given byte for byte.
    """

    @property
    def location(self) -> str:
        """Where the events live, for logs: a file path or a URL without its password."""
        ...

    def save(self, event: Event, held: HeldChanges | None = None) -> SaveOutcome:
        """Store ``event`` under the NIP-01 replace rules and NIP-09 deletions, atomically.

        Replaceable (0, 3, 10000-19999) and addressable (30000-39999) kinds keep only the
        latest version per (kind, pubkey[, d]); equal ``created_at`` -> lowest id wins (S11.2).
        A kind-5 deletion removes the same author's targets (never other deletions) and is
        remembered, so a deleted event sent again is refused. Ephemeral kinds are not stored.

        ``held`` changes purgatory's tables in the same transaction whatever the outcome (a
        released event leaves purgatory even when a newer version was stored meanwhile, S9.1).
        Either everything of one save happens or nothing does.
        """
        ...

    def save_all(
        self, events: Sequence[Event], held: HeldChanges | None = None
    ) -> list[SaveOutcome]:
        """:meth:`save` of each of ``events`` in order, then ``held``, in one transaction: a
        release stores a state and the announcements it promotes together (S8.2, S9.1), one
        commit instead of one per event (P1: 0.45 ms each on this machine). The outcomes are
        in the order of ``events``."""
        ...

    def write_held(self, changes: HeldChanges) -> None:
        """Apply ``changes`` to purgatory's tables in one transaction (S9.1): when this
        returns, the rows are committed and a client may be told ``OK true``."""
        ...

    def load_held(self) -> HeldSnapshot:
        """Every held event, placeholder and remembered expired id, in arrival order."""
        ...

    def load_held_since(self, version: int) -> tuple[int, HeldSnapshot | HeldDelta | None]:
        """Purgatory's tables as other processes left them (S19.2, one truth): the current
        version of the held rows and, when it is not ``version``, what changed since — a
        :class:`HeldDelta` (the keys touched and their current rows), or everything (a
        :class:`HeldSnapshot`) for version 0 or a version older than the change log keeps.
        An engine only this process writes (SQLite) always answers ``(version, None)``."""
        ...

    def resume(self, node: str, now: float) -> float:
        """Start-up of ``node`` at wall-clock ``now``: the downtime is ``now`` minus the last
        heartbeat of any node (0 without one); every open deadline moves by it and ``node``'s
        heartbeat becomes ``now``, in one transaction, so two nodes starting at once credit
        the downtime once (S9.1, docs/durability.rst D3). Returns the downtime in seconds."""
        ...

    def heartbeat(self, node: str, now: float) -> None:
        """Record that ``node`` was running at wall-clock ``now`` (every few seconds)."""
        ...

    def query(self, filters: Sequence[Filter], limit_cap: int = DEFAULT_LIMIT_CAP) -> list[Event]:
        """NIP-01 REQ: the OR of ``filters``, each limited to min(limit, cap) newest events.

        The union is ordered newest first, equal ``created_at`` by lowest id, without duplicates.
        Tag filters match the first value of single-letter tags.
        """
        ...

    def query_json(
        self, filters: Sequence[Filter], limit_cap: int = DEFAULT_LIMIT_CAP
    ) -> list[str]:
        """Like :meth:`query` but the stored JSON texts, for relays that splice them into
        frames without parsing and re-serialising each event."""
        ...

    def records(self, flt: Filter, limit: int) -> list[tuple[int, str]]:
        """NIP-77 (S17.3): ``(created_at, id)`` of at most ``limit`` stored events matching
        ``flt`` (its own ``limit`` applies when smaller), newest first, without reading their
        JSON. Held (purgatory) events are never included: they are not served."""
        ...

    def get(self, event_id: str) -> Event | None:
        """The stored event with this id, or None."""
        ...

    def contains(self, event_id: str) -> bool:
        """Whether an event with this id is stored (cheaper than :meth:`get`)."""
        ...

    def count(self) -> int:
        """How many events are stored (start-up logs and the status page)."""
        ...

    def add_references(self, referrer: str, targets: Iterable[str]) -> None:
        """Remember that the accepted event ``referrer`` names ``targets`` (S15.1).

        A target is an event id or an address ``<kind>:<pubkey>:<d>``; GRASP-01 L13 makes an
        event acceptable when an accepted event tags it, and it may arrive after the event
        that tags it. The index is bounded: never more than
        ``max_references`` targets (default :data:`DEFAULT_MAX_REFERENCES`), the oldest
        recorded reference dropped first. It is stored with the events, so it survives
        restarts.
        """
        ...

    def referrer_of(self, targets: Iterable[str]) -> str | None:
        """The id of an accepted event that named any of ``targets``, or None (S15.1)."""
        ...

    def repository_lock(self, identifier: str) -> AbstractContextManager[None]:
        """Held around a release pass of ``identifier``'s repositories (S19.2: ref updates of
        one repository are serialised cluster-wide). PostgreSQL: a session advisory lock, so
        the Releasers of two nodes never align one repository at once; SQLite: nothing to
        take, the one Releaser of the one process is the only writer (S8.1)."""
        ...

    def save_peer(self, row: PeerRow) -> None:
        """Insert or update one peer (S17.1, S17.4) by its URL; ``discovered_at`` is kept from
        the first insert. Past :data:`grasp.store.peers.MAX_PEER_ROWS` rows a new peer is not
        stored (the caller's own bound is lower), an existing one is still updated."""
        ...

    def load_peers(self) -> list[PeerRow]:
        """Every stored peer, oldest discovery first (at most ``MAX_PEER_ROWS``)."""
        ...

    def close(self) -> None:
        """Release the database; the store must not be used afterwards."""
        ...

    def __enter__(self) -> EventStore: ...

    def __exit__(self, *exc_info: object) -> None: ...
