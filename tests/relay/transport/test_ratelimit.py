"""The per-connection event rate limit (S15.5): a sliding window, answered ``rate-limited:``
before any signature is checked; sync sources never pass through it (they have no session)."""

from __future__ import annotations

from grasp.admission.intake import StoreWritePolicy
from grasp.relay.transport.hub import SubscriptionHub
from grasp.relay.transport.ratelimit import EventRateLimiter
from grasp.relay.transport.session import Nip01Session, SessionContext, SessionLimits
from grasp.store.sqlite import SqliteEventStore
from tests.relay.conftest import signed
from tests.relay.transport.test_session import RecordingOutbox, send


def test_s15_5_at_most_limit_events_in_any_window():
    limiter = EventRateLimiter(3, window=60.0)
    assert [limiter.check(t) for t in (0.0, 1.0, 2.0)] == [None, None, None]
    refused = limiter.check(30.0)
    assert refused is not None and not refused.accepted
    assert refused.message.startswith("rate-limited: ") and "try again in 30 s" in refused.message
    assert limiter.check(59.9) is not None  # the first event still counts
    assert limiter.check(60.0) is None  # ... until it left the window
    assert limiter.check(60.5) is not None


def test_limit_zero_is_off():
    limiter = EventRateLimiter(0)
    assert all(limiter.check(0.0) is None for _ in range(1000))


def test_s15_5_the_session_refuses_past_the_limit_without_checking_signatures(tmp_path):
    store, hub = SqliteEventStore(tmp_path / "events.sqlite3"), SubscriptionHub()
    now = [100.0]
    context = SessionContext(
        accept_event=StoreWritePolicy(store, hub.publish),
        query=store.query,
        hub=hub,
        limits=SessionLimits(max_events_per_minute=2),
        clock=lambda: now[0],
    )
    out = RecordingOutbox()
    session = Nip01Session(out, context)
    first, second = signed(), signed()
    send(session, "EVENT", first.to_json())
    send(session, "EVENT", second.to_json())
    forged = dict(signed().to_json(), sig="00" * 64)  # would be invalid: never verified
    send(session, "EVENT", forged)
    frames = out.take()
    assert [f[2] for f in frames] == [True, True, False]
    assert frames[2][1] == forged["id"] and frames[2][3].startswith("rate-limited: ")
    assert store.get(first.id) and store.get(second.id)
    now[0] += 60.0
    send(session, "EVENT", signed().to_json())
    assert out.take()[0][2] is True
    store.close()
