"""Live fan-out: which connection wants which event (NIP-01 "then live", S10.1).

:meth:`SubscriptionHub.publish` is the relay's single "an event became servable" entry point:
the default write path calls it after a save, and the release workflow will pass it as its notify
callback ("Subscribers are notified when the Releaser releases an event"). It never blocks: every
delivery is an :meth:`Outbox.offer` into a bounded per-connection queue, and a client that cannot
keep up is disconnected by its connection, not waited for.

A REQ is registered *before* its stored events are queried, so an event published while the
query runs is not lost. Until EOSE the subscription remembers the ids it delivered live, and the
session skips those among the stored results, so nothing arrives twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import gevent

from grasp.nostr.event import Event
from grasp.nostr.filters import Filter

logger = logging.getLogger(__name__)


class Outbox(Protocol):
    """The sending side of one client connection, as the hub and the session see it."""

    def send(self, text: str) -> bool:
        """Queue a frame from the connection's own greenlet (may wait for room)."""
        ...

    def offer(self, text: str) -> bool:
        """Queue a frame from any greenlet without blocking (a full outbox drops the client)."""
        ...


def event_frame(sub_id: str, event_json: str) -> str:
    """``["EVENT", <sub_id>, <event>]`` around an already serialised event."""
    return f'["EVENT",{json.dumps(sub_id, ensure_ascii=False)},{event_json}]'


class Subscription:
    """One REQ of one connection: its filters, and the live ids sent before its EOSE."""

    __slots__ = ("owner", "sub_id", "filters", "live_before_eose")

    def __init__(self, owner: Outbox, sub_id: str, filters: Sequence[Filter]) -> None:
        self.owner = owner
        self.sub_id = sub_id
        self.filters = tuple(filters)
        #: Ids delivered live while the stored query was still running; None after EOSE.
        self.live_before_eose: set[str] | None = set()

    def matches(self, event: Event) -> bool:
        return any(flt.matches(event) for flt in self.filters)

    def end_of_stored_events(self) -> None:
        self.live_before_eose = None


class SubscriptionHub:
    """Every open subscription of every connection, keyed by connection then subscription id."""

    def __init__(self) -> None:
        self._by_owner: dict[Outbox, dict[str, Subscription]] = {}

    def subscribe(self, owner: Outbox, sub_id: str, filters: Sequence[Filter]) -> Subscription:
        """Open (or replace, NIP-01) the subscription ``sub_id`` of ``owner``."""
        subscription = Subscription(owner, sub_id, filters)
        self._by_owner.setdefault(owner, {})[sub_id] = subscription
        return subscription

    def unsubscribe(self, owner: Outbox, sub_id: str) -> bool:
        """Close one subscription; False if it was not open."""
        subs = self._by_owner.get(owner)
        if subs is None or subs.pop(sub_id, None) is None:
            return False
        if not subs:
            del self._by_owner[owner]
        return True

    def unsubscribe_all(self, owner: Outbox) -> int:
        """Forget a connection that went away; returns how many subscriptions it had."""
        return len(self._by_owner.pop(owner, {}))

    def has(self, owner: Outbox, sub_id: str) -> bool:
        return sub_id in self._by_owner.get(owner, {})

    def count(self, owner: Outbox | None = None) -> int:
        """Open subscriptions of ``owner``, or of everyone."""
        if owner is not None:
            return len(self._by_owner.get(owner, {}))
        return sum(len(subs) for subs in self._by_owner.values())

    def publish(self, event: Event) -> int:
        """Offer ``event`` to every matching subscription; returns how many were offered it."""
        event_json: str | None = None
        delivered = 0
        # Copy: an offer can disconnect a slow client, whose session then unsubscribes.
        for subs in list(self._by_owner.values()):
            for subscription in list(subs.values()):
                if not subscription.matches(event):
                    continue
                if event_json is None:
                    event_json = event.to_json_text()
                if subscription.live_before_eose is not None:
                    subscription.live_before_eose.add(event.id)
                if subscription.owner.offer(event_frame(subscription.sub_id, event_json)):
                    delivered += 1
        logger.debug("published %s (kind %d) to %d subscriptions", event.id, event.kind, delivered)
        return delivered


def publish_now(publish: Callable[[Event], int], event: Event) -> int:
    """``publish(event)``, then let the subscribers' writer greenlets send it before the
    caller goes on: an offer only queues the frame, and the writers run when the publisher
    next yields. For the Releaser that was after the release's bookkeeping (metrics, status
    board, peers, the actors' answer), ~0.3 ms of P1's tail measured between the broadcast
    and the websocket write (issue 16). Yields only when someone was offered the event."""
    delivered = publish(event)
    if delivered:
        gevent.sleep(0)
    return delivered
