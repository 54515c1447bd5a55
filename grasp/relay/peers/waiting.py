"""Events refused only because their parent was not known yet (S17.2), kept to be retried.

A peer sends its history in dependency order, but not every peer has every parent, and the
live subscription delivers whatever happens next: a state may arrive before the announcement
that authorises it, a comment before its issue. The write policy refuses those (``invalid: no
announcement exists for this repository``, ``blocked: ... must reference ...``); the event is
remembered here under the keys of the parents it lacks, and offered again when an event with
such a key is accepted — by any path: a peer, a sync source, a client.

Bounded: at most ``max_events`` (least recently parked go first) and each expires after
``ttl`` seconds (purgatory's 30 min by default: a parent that has not come by then is not
coming from this sync). Pure; ``now`` is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from grasp.admission import rules
from grasp.nostr import kinds
from grasp.nostr.event import Event
from grasp.nostr.results import Prefix, Result

__all__ = ["DEFAULT_MAX_WAITING", "DEFAULT_WAIT_SECS", "WaitingForParents", "missing_parents"]

DEFAULT_MAX_WAITING = 2000
DEFAULT_WAIT_SECS = 1800.0
_UNKNOWN_REFERENCE = "must reference a repository or an event accepted by this relay"
_UNKNOWN_PR_REPOSITORY = "pull request does not reference a repository on this relay"


def missing_parents(event: Event, result: Result) -> frozenset[str]:
    """The parent keys whose acceptance could change ``result``; empty for any other refusal.

    Keys are ``d:<identifier>`` (an announcement of that identifier), ``a:<kind:pk:d>`` and
    ``e:<id>``, the same ones :func:`parent_keys` gives an accepted event.
    """
    if result.accepted:
        return frozenset()
    if event.kind == kinds.REPO_STATE and result in (rules.NO_ANNOUNCEMENT, rules.NOT_AUTHORISED):
        return frozenset({f"d:{_d(event)}"})
    if result.prefix is Prefix.BLOCKED and _UNKNOWN_REFERENCE in result.message:
        return _referenced_keys(event)
    if result.prefix is Prefix.INVALID and _UNKNOWN_PR_REPOSITORY in result.message:
        return _referenced_keys(event)
    return frozenset()


def parent_keys(event: Event) -> frozenset[str]:
    """The keys an accepted ``event`` satisfies (see :func:`missing_parents`)."""
    keys = {f"e:{event.id}"}
    if kinds.is_addressable(event.kind):
        keys.add(f"a:{event.kind}:{event.pubkey}:{_d(event)}")
    if event.kind == kinds.REPO_ANNOUNCEMENT:
        keys.add(f"d:{_d(event)}")
    return frozenset(keys)


class WaitingForParents:
    """The bounded, expiring memory of events waiting for a parent."""

    def __init__(
        self, max_events: int = DEFAULT_MAX_WAITING, ttl: float = DEFAULT_WAIT_SECS
    ) -> None:
        if max_events < 1 or ttl <= 0:
            raise ValueError("max_events must be at least 1 and ttl positive")
        self.max_events = max_events
        self.ttl = ttl
        self._events: OrderedDict[str, tuple[Event, frozenset[str], float]] = OrderedDict()
        self._by_key: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._events

    def park(self, event: Event, parents: Iterable[str], now: float) -> None:
        keys = frozenset(parents)
        if not keys:
            return
        self._drop(event.id)
        self._events[event.id] = (event, keys, now + self.ttl)
        for key in keys:
            self._by_key.setdefault(key, set()).add(event.id)
        while len(self._events) > self.max_events:
            self._drop(next(iter(self._events)))

    def released_by(self, accepted: Event, now: float) -> list[Event]:
        """The waiting events one of whose parents ``accepted`` is; they leave the memory."""
        self.expire(now)
        ids = set().union(*(self._by_key.get(k, set()) for k in parent_keys(accepted)))
        found = [self._events[i][0] for i in ids if i in self._events]
        for event in found:
            self._drop(event.id)
        return sorted(found, key=lambda e: (e.created_at, e.id))

    def expire(self, now: float) -> None:
        for event_id in [i for i, (_, _, end) in self._events.items() if end <= now]:
            self._drop(event_id)

    def _drop(self, event_id: str) -> None:
        entry = self._events.pop(event_id, None)
        if entry is None:
            return
        for key in entry[1]:
            waiting = self._by_key.get(key)
            if waiting is not None:
                waiting.discard(event_id)
                if not waiting:
                    del self._by_key[key]


def _referenced_keys(event: Event) -> frozenset[str]:
    keys = {f"e:{i}" for i in rules.referenced_ids(event)}
    for address in rules.referenced_addresses(event):
        keys.add(f"a:{address.kind}:{address.pubkey}:{address.d}")
        if address.kind == kinds.REPO_ANNOUNCEMENT:
            keys.add(f"d:{address.d}")
    return frozenset(keys)


def _d(event: Event) -> str:
    return next((t[1] for t in event.tags if len(t) > 1 and t[0] == "d"), "")
