"""The write path's seam: a pluggable ``accept_event(event, source) -> Result`` policy.

The session only validates (NIP-01 shape, id, signature) and answers ``OK`` with whatever the
policy returns. Deciding what to keep, hold in purgatory or refuse — and telling the hub what
became servable — is the policy's job. :class:`StoreWritePolicy` is the plain NIP-01 default
(save, broadcast what was stored); the GRASP policy replaces it without the session changing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from grasp.nostr.event import Event
from grasp.nostr.results import Prefix, Result
from grasp.store.base import EventStore, SaveOutcome

logger = logging.getLogger(__name__)


class EventSource(Enum):
    """Where an event came from; policies treat synced events differently (S4.2, S1.4)."""

    #: Published by a websocket client of this relay.
    CLIENT = "client"
    #: Copied from a configured sync source relay (S10.7).
    SYNC = "sync"


class WritePolicy(Protocol):
    def __call__(self, event: Event, source: EventSource) -> Result: ...


class StoreWritePolicy:
    """Default policy: store every valid event and broadcast the ones that became servable.

    ``notify`` is the relay hub's ``publish`` (any callable taking the event). Ephemeral events
    (20000-29999) are never stored but still relayed live, as NIP-01 intends.
    """

    def __init__(self, store: EventStore, notify: Callable[[Event], object]) -> None:
        self._store = store
        self._notify = notify

    def __call__(self, event: Event, source: EventSource) -> Result:
        try:
            outcome = self._store.save(event)
        except Exception:
            logger.exception("could not store event %s", event.id)
            return Result.reject(Prefix.ERROR, "could not store the event")
        if outcome.stored or outcome is SaveOutcome.EPHEMERAL:
            self._notify(event)
        logger.debug(
            "event %s kind %d from %s: %s", event.id, event.kind, source.value, outcome.value
        )
        return outcome.to_result()
