"""Live fan-out (S10.1 "then live"; the Releaser's notify callback): matching, never blocking."""

from __future__ import annotations

import json

import gevent.queue

from grasp.nostr.filters import Filter
from grasp.relay.transport.hub import SubscriptionHub, event_frame, publish_now
from tests.relay.conftest import signed


class Outbox:
    def __init__(self, accept: bool = True) -> None:
        self.offered: list[list] = []
        self.accept = accept

    def send(self, text: str) -> bool:
        raise AssertionError("the hub must never use the blocking send")

    def offer(self, text: str) -> bool:
        if self.accept:
            self.offered.append(json.loads(text))
        return self.accept


def test_publish_reaches_only_matching_subscriptions_and_counts_them():
    hub = SubscriptionHub()
    a, b = Outbox(), Outbox()
    hub.subscribe(a, "notes", [Filter(kinds={1})])
    hub.subscribe(a, "repos", [Filter(kinds={30617}), Filter(kinds={1}, tags={"t": ["git"]})])
    hub.subscribe(b, "other", [Filter(kinds={7})])
    note = signed(tags=[["t", "git"]])
    assert hub.publish(note) == 2
    assert a.offered == [["EVENT", "notes", note.to_json()], ["EVENT", "repos", note.to_json()]]
    assert b.offered == []


def test_refused_offer_is_not_counted_and_does_not_stop_fan_out():
    hub = SubscriptionHub()
    slow, fast = Outbox(accept=False), Outbox()
    hub.subscribe(slow, "s", [Filter()])
    hub.subscribe(fast, "s", [Filter()])
    event = signed()
    assert hub.publish(event) == 1
    assert fast.offered == [["EVENT", "s", event.to_json()]]


def test_an_owner_dropped_during_publish_does_not_break_iteration():
    hub = SubscriptionHub()

    class Leaving(Outbox):
        def offer(self, text: str) -> bool:
            hub.unsubscribe_all(self)  # a slow client disconnected by its own offer
            return False

    leaving, staying = Leaving(), Outbox()
    hub.subscribe(leaving, "x", [Filter()])
    hub.subscribe(leaving, "y", [Filter()])
    hub.subscribe(staying, "z", [Filter()])
    hub.publish(signed())
    assert len(staying.offered) == 1 and hub.count() == 1


def test_live_ids_are_remembered_until_end_of_stored_events():
    hub = SubscriptionHub()
    sub = hub.subscribe(Outbox(), "s", [Filter()])
    first, second = signed(), signed()
    hub.publish(first)
    assert sub.live_before_eose == {first.id}
    sub.end_of_stored_events()
    hub.publish(second)
    assert sub.live_before_eose is None


def test_unsubscribe_and_counts():
    hub = SubscriptionHub()
    owner = Outbox()
    hub.subscribe(owner, "a", [Filter()])
    hub.subscribe(owner, "b", [Filter()])
    assert hub.count(owner) == 2 and hub.has(owner, "a")
    assert hub.unsubscribe(owner, "a") is True
    assert hub.unsubscribe(owner, "a") is False
    assert hub.unsubscribe_all(owner) == 1
    assert hub.count() == 0


def test_event_frame_escapes_the_subscription_id():
    assert json.loads(event_frame('q"uote', '{"id":"x"}')) == ["EVENT", 'q"uote', {"id": "x"}]


class QueuedOutbox(Outbox):
    """Like a connection: an offer only queues; a writer greenlet of its own sends."""

    def __init__(self) -> None:
        super().__init__()
        self.queue: gevent.queue.Queue[str] = gevent.queue.Queue()
        self.sent: list[list] = []
        self.writer = gevent.spawn(self._write)

    def offer(self, text: str) -> bool:
        self.queue.put(text)
        return True

    def _write(self) -> None:
        while (text := self.queue.get()) != "stop":
            self.sent.append(json.loads(text))


def test_publish_now_returns_after_the_writers_sent_the_event():
    """The Releaser's notify (P1): the subscriber's frame is written before the publisher
    goes on, not when it next happens to yield."""
    hub = SubscriptionHub()
    outbox = QueuedOutbox()
    hub.subscribe(outbox, "notes", [Filter(kinds={1})])
    gevent.sleep(0)  # the writer waits on its queue
    note = signed()
    try:
        assert hub.publish(note) == 1 and outbox.sent == []  # queued only
        assert publish_now(hub.publish, signed(content="again")) == 1
        assert [frame[2]["content"] for frame in outbox.sent] == [note.content, "again"]
        assert publish_now(hub.publish, signed(kind=7)) == 0  # no subscriber: nothing to wait
    finally:
        outbox.queue.put("stop")
        outbox.writer.join(timeout=5)
    assert outbox.writer.dead
