"""S10.1 NIP-01 session logic, driven without sockets:
a recording outbox over a real SQLite store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from grasp.admission.intake import EventSource, StoreWritePolicy
from grasp.nostr.results import Prefix, Result
from grasp.relay.transport.hub import SubscriptionHub
from grasp.relay.transport.session import Nip01Session, SessionContext, SessionLimits
from grasp.store.sqlite import EventStore
from tests.relay.conftest import signed


class RecordingOutbox:
    """Collects frames; ``accept`` False plays a connection that is closing."""

    def __init__(self) -> None:
        self.frames: list[list[Any]] = []
        self.accept = True

    def send(self, text: str) -> bool:
        if self.accept:
            self.frames.append(json.loads(text))
        return self.accept

    offer = send

    def take(self) -> list[list[Any]]:
        frames, self.frames = self.frames, []
        return frames


@pytest.fixture
def store(tmp_path):
    with EventStore(tmp_path / "events.sqlite3") as store:
        yield store


@pytest.fixture
def hub():
    return SubscriptionHub()


def make_session(store, hub, policy=None, limits=SessionLimits(), query=None, query_json=None):
    """A session over ``store``; by default stored
    events come from ``query_json`` as in the relay."""
    out = RecordingOutbox()
    context = SessionContext(
        accept_event=policy or StoreWritePolicy(store, hub.publish),
        query=query or store.query,
        hub=hub,
        limits=limits,
        query_json=store.query_json if query is None and query_json is None else query_json,
    )
    return Nip01Session(out, context), out


def send(session, *frame: Any) -> None:
    session.on_text(json.dumps(list(frame)))


# --- EVENT -----------------------------------------------------------------------------------


def test_s10_1_valid_event_ok_true_and_stored(store, hub):
    session, out = make_session(store, hub)
    event = signed()
    send(session, "EVENT", event.to_json())
    assert out.take() == [["OK", event.id, True, ""]]
    assert store.contains(event.id)


def test_s10_1_duplicate_event_ok_true_with_duplicate_prefix(store, hub):
    session, out = make_session(store, hub)
    event = signed()
    send(session, "EVENT", event.to_json())
    send(session, "EVENT", event.to_json())
    ok = out.take()[1]
    assert ok[:3] == ["OK", event.id, True] and ok[3].startswith("duplicate: ")


def _tampered(field: str, value: Any) -> tuple[dict, str]:
    obj = signed().to_json()
    obj[field] = value
    return obj, obj["id"]


@pytest.mark.parametrize(
    "obj, answer_id, reason",
    [
        pytest.param(
            *_tampered("content", "changed after signing"), "invalid: bad event id", id="wrong-id"
        ),
        pytest.param(*_tampered("sig", "00" * 64), "invalid: bad signature", id="bad-signature"),
        pytest.param(
            *(lambda o: (o, o["id"]))({**signed().to_json(), "id": signed().id.upper()}),
            "invalid: id must be 64 lowercase hex characters",
            id="uppercase-id",
        ),
        pytest.param(
            *(lambda o: (o, o["id"]))({**signed().to_json(), "kind": "1"}),
            "invalid: kind must be an integer",
            id="string-kind",
        ),
    ],
)
def test_s10_1_invalid_event_ok_false_with_reason_and_not_stored(
    store, hub, obj, answer_id, reason
):
    session, out = make_session(store, hub)
    send(session, "EVENT", obj)
    assert out.take() == [["OK", answer_id, False, reason]]
    assert store.count() == 0


@pytest.mark.parametrize("payload", [5, "text", None, {"content": "no id"}, {"id": 7}])
def test_s10_1_event_without_id_string_gets_notice_not_ok(store, hub, payload):
    session, out = make_session(store, hub)
    send(session, "EVENT", payload)
    [frame] = out.take()
    assert frame[0] == "NOTICE" and frame[1].startswith("invalid: ")
    assert store.count() == 0


def test_s10_1_event_frame_with_extra_elements_is_refused_with_ok(store, hub):
    session, out = make_session(store, hub)
    event = signed()
    send(session, "EVENT", event.to_json(), "extra")
    assert out.take() == [["OK", event.id, False, "invalid: EVENT must carry exactly one event"]]
    assert store.count() == 0


def test_s10_1_write_policy_result_is_answered_verbatim_with_four_elements(store, hub):
    seen = []

    def policy(event, source):
        seen.append((event.id, source))
        return Result.ok(Prefix.PURGATORY, "won't be served until git data arrives")

    session, out = make_session(store, hub, policy=policy)
    event = signed(kind=30618, tags=[["d", "repo"]])
    send(session, "EVENT", event.to_json())
    assert out.take() == [
        ["OK", event.id, True, "purgatory: won't be served until git data arrives"]
    ]
    assert seen == [(event.id, EventSource.CLIENT)]


def test_s10_1_write_policy_crash_becomes_ok_false_error(store, hub):
    def policy(event, source):
        raise RuntimeError("boom")

    session, out = make_session(store, hub, policy=policy)
    event = signed()
    send(session, "EVENT", event.to_json())
    [frame] = out.take()
    assert frame[:3] == ["OK", event.id, False] and frame[3].startswith("error: ")


# --- unparsable frames -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, notice",
    [
        ("not json at all", "invalid: message is not valid JSON"),
        ('["EVENT", NaN]', "invalid: message is not valid JSON"),
        ("[" * 100000, "invalid: message is not valid JSON"),
        ('{"EVENT": 1}', "invalid: message must be a non-empty JSON array"),
        ("[]", "invalid: message must be a non-empty JSON array"),
        ('"REQ"', "invalid: message must be a non-empty JSON array"),
        ('["HELLO", 1]', "invalid: unknown message type HELLO"),
        ("[42]", "invalid: unknown message type 42"),
    ],
)
def test_s10_1_unparsable_frames_get_notice(store, hub, text, notice):
    session, out = make_session(store, hub)
    session.on_text(text)
    assert out.take() == [["NOTICE", notice]]


def test_binary_message_gets_notice(store, hub):
    session, out = make_session(store, hub)
    session.on_binary(b"\x00\x01")
    [[verb, text]] = out.take()
    assert verb == "NOTICE" and text.startswith("invalid: binary")


# --- REQ / CLOSE -----------------------------------------------------------------------------


def test_s10_1_req_returns_stored_newest_first_then_eose_then_live(store, hub):
    session, out = make_session(store, hub)
    old, new = signed(created_at=1000), signed(created_at=2000)
    other_kind = signed(kind=7)
    for event in (old, new, other_kind):
        store.save(event)
    send(session, "REQ", "s", {"kinds": [1]})
    assert out.take() == [
        ["EVENT", "s", new.to_json()],
        ["EVENT", "s", old.to_json()],
        ["EOSE", "s"],
    ]
    live, ignored = signed(), signed(kind=7)
    hub.publish(live)
    hub.publish(ignored)
    assert out.take() == [["EVENT", "s", live.to_json()]]


def test_s10_1_limit_is_clamped_to_max_limit(store, hub):
    session, out = make_session(store, hub, limits=SessionLimits(max_limit=2))
    for when in (1, 2, 3):
        store.save(signed(created_at=when))
    send(session, "REQ", "s", {"limit": 1000})
    frames = out.take()
    assert [f[2]["created_at"] for f in frames[:-1]] == [3, 2]
    assert frames[-1] == ["EOSE", "s"]


def test_s10_1_req_with_same_id_replaces_the_subscription(store, hub):
    session, out = make_session(store, hub)
    send(session, "REQ", "s", {"kinds": [1]})
    send(session, "REQ", "s", {"kinds": [7]})
    out.take()
    hub.publish(signed(kind=1))
    reaction = signed(kind=7)
    hub.publish(reaction)
    assert out.take() == [["EVENT", "s", reaction.to_json()]]
    assert hub.count(session._out) == 1


def test_s10_1_twenty_first_subscription_is_closed_blocked(store, hub):
    session, out = make_session(store, hub)
    for n in range(20):
        send(session, "REQ", f"sub{n}", {"kinds": [1]})
    out.take()
    send(session, "REQ", "sub20", {"kinds": [1]})
    assert out.take() == [
        ["CLOSED", "sub20", "blocked: too many subscriptions (at most 20 per connection)"]
    ]
    send(session, "REQ", "sub3", {"kinds": [7]})  # replacing an open one is still allowed
    assert out.take() == [["EOSE", "sub3"]]
    assert hub.count() == 20


@pytest.mark.parametrize("sub_id", ["a" * 65, ""])
def test_s10_1_subscription_id_must_be_1_to_64_characters(store, hub, sub_id):
    session, out = make_session(store, hub)
    send(session, "REQ", sub_id, {})
    assert out.take() == [["CLOSED", sub_id, "invalid: subscription id must be 1 to 64 characters"]]
    assert hub.count() == 0
    send(session, "REQ", "a" * 64, {})
    assert out.take() == [["EOSE", "a" * 64]]


def test_s10_1_non_string_subscription_id_gets_notice(store, hub):
    session, out = make_session(store, hub)
    send(session, "REQ", 17, {})
    assert out.take() == [["NOTICE", "invalid: REQ needs a subscription id string"]]


@pytest.mark.parametrize(
    "filters, reason",
    [
        ([{"ids": ["XYZ"]}], "invalid: 'ids' values must be 64 lowercase hex characters"),
        ([{"kinds": [1]}, {"authors": "abc"}], "invalid: 'authors' must be a list of strings"),
        ([["not", "an", "object"]], "invalid: filter must be a JSON object"),
        ([], "invalid: REQ needs at least one filter"),
    ],
)
def test_s10_1_bad_filter_closes_the_req_invalid(store, hub, filters, reason):
    session, out = make_session(store, hub)
    send(session, "REQ", "keep", {"kinds": [1]})
    send(session, "REQ", "bad", {"kinds": [1]})
    out.take()
    send(session, "REQ", "bad", *filters)
    assert out.take() == [["CLOSED", "bad", reason]]
    assert not hub.has(session._out, "bad") and hub.has(session._out, "keep")


def test_s10_1_close_ends_live_delivery(store, hub):
    session, out = make_session(store, hub)
    send(session, "REQ", "a", {"kinds": [1]})
    send(session, "REQ", "b", {"kinds": [1]})
    send(session, "CLOSE", "a")
    out.take()
    event = signed()
    hub.publish(event)
    assert out.take() == [["EVENT", "b", event.to_json()]]


@pytest.mark.parametrize("frame", [["CLOSE"], ["CLOSE", 1], ["CLOSE", "a", "b"]])
def test_malformed_close_gets_notice(store, hub, frame):
    session, out = make_session(store, hub)
    send(session, *frame)
    assert out.take() == [["NOTICE", "invalid: CLOSE needs exactly one subscription id string"]]


def test_count_is_refused_with_closed(store, hub):
    session, out = make_session(store, hub)
    send(session, "COUNT", "c", {"kinds": [1]})
    assert out.take() == [["CLOSED", "c", "error: COUNT (NIP-45) is not supported"]]


def test_event_published_while_the_query_runs_is_sent_once(store, hub):
    """The REQ subscribes before querying; a concurrent publish is not lost nor duplicated."""
    racing = signed()

    def query_with_concurrent_publish(filters, limit_cap):
        store.save(racing)
        hub.publish(racing)  # what another greenlet's EVENT would do mid-query
        return store.query_json(filters, limit_cap)

    session, out = make_session(store, hub, query_json=query_with_concurrent_publish)
    send(session, "REQ", "s", {"kinds": [1]})
    assert out.take() == [["EVENT", "s", racing.to_json()], ["EOSE", "s"]]


def test_event_query_is_used_when_no_json_query_is_given(store, hub):
    """``SessionContext.query`` (Events) alone works too; ``query_json`` is an optimisation."""
    session, out = make_session(store, hub, query=store.query)
    event = signed()
    store.save(event)
    send(session, "REQ", "s", {"ids": [event.id]})
    assert out.take() == [["EVENT", "s", event.to_json()], ["EOSE", "s"]]


def test_query_failure_closes_the_req_with_error(store, hub):
    def broken_query(filters, limit_cap):
        raise OSError("disk gone")

    session, out = make_session(store, hub, query=broken_query)
    send(session, "REQ", "s", {})
    assert out.take() == [["CLOSED", "s", "error: could not query stored events"]]
    assert hub.count() == 0


def test_closing_connection_stops_the_stored_events_early(store, hub):
    session, out = make_session(store, hub)
    for when in range(5):
        store.save(signed(created_at=when))
    out.accept = False
    send(session, "REQ", "s", {})
    assert out.take() == []


def test_on_close_drops_every_subscription(store, hub):
    session, _ = make_session(store, hub)
    send(session, "REQ", "a", {})
    send(session, "REQ", "b", {})
    session.on_close()
    assert hub.count() == 0


def test_farewell_is_a_notice(store, hub):
    session, _ = make_session(store, hub)
    assert json.loads(session.farewell("too slow")) == [
        "NOTICE",
        "error: closing connection: too slow",
    ]


def test_ephemeral_event_is_relayed_live_but_not_stored(store, hub):
    session, out = make_session(store, hub)
    send(session, "REQ", "s", {"kinds": [20001]})
    out.take()
    event = signed(kind=20001)
    send(session, "EVENT", event.to_json())
    assert out.take() == [["EVENT", "s", event.to_json()], ["OK", event.id, True, ""]]
    assert store.count() == 0


# --- NIP-77 (S17.3) --------------------------------------------------------------------------


def _neg_session(store, hub, responders: list):
    from grasp.nostr.nip77 import NegentropyResponder

    def new_responder() -> NegentropyResponder:
        responders.append(NegentropyResponder(lambda flt: store.records(flt, 101), max_records=100))
        return responders[-1]

    out = RecordingOutbox()
    context = SessionContext(
        accept_event=StoreWritePolicy(store, hub.publish),
        query=store.query,
        hub=hub,
        negentropy=new_responder,
    )
    return Nip01Session(out, context), out


def test_s17_3_each_connection_has_its_own_responder_closed_on_disconnect(store, hub):
    from grasp.nostr.filters import Filter
    from grasp.nostr.nip77 import NegentropyInitiator, ReconcileResult

    event = signed()
    store.save(event)
    responders: list = []
    session, out = _neg_session(store, hub, responders)
    other, _ = _neg_session(store, hub, responders)
    init = NegentropyInitiator([], "n", Filter())
    send(session, *init.open_frame())
    [reply] = out.take()
    assert reply[0:2] == ["NEG-MSG", "n"]
    result = init.on_frame(reply)
    assert isinstance(result, ReconcileResult) and result.need_ids == {event.id}
    assert responders[0].session_ids == {"n"} and len(responders[1]) == 0
    session.on_close()
    assert len(responders[0]) == 0  # the connection ended: its sessions with it
    assert other is not session


def test_s17_3_neg_frames_are_unknown_verbs_without_a_responder(store, hub):
    session, out = make_session(store, hub)
    send(session, "NEG-OPEN", "n", {}, "61")
    assert out.take() == [["NOTICE", "invalid: unknown message type NEG-OPEN"]]


def test_s17_3_a_responder_bug_is_neg_err_error_not_a_dead_connection(store, hub, caplog):
    responders: list = []
    session, out = _neg_session(store, hub, responders)

    def broken(frame):
        raise RuntimeError("bug")

    responders[0].handle = broken
    send(session, "NEG-OPEN", "n", {}, "61")
    assert out.take() == [["NEG-ERR", "n", "error: could not reconcile"]]
    assert "NIP-77 NEG-OPEN" in caplog.text
