"""The relay as a user runs it: a separate ``grasp-relay`` process, driven by independent clients.

websocket-client speaks raw NIP-01 frames; nostr-sdk (rust-nostr, asyncio API) is an independent
Nostr implementation, run with ``asyncio.run`` inside the gevent-patched test process.

The process is a GRASP relay, so the traffic is NIP-34: a repository announcement naming this
relay, then issues (kind 1621) that reference it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import struct
from datetime import timedelta

import pytest
import websocket

from tests.relay.conftest import Client, accepted_repository, issue, signed
from tests.support.relay import RelayProcess


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    with RelayProcess(
        tmp_path_factory.mktemp("relay") / "data", "--max-message-bytes", "64KiB"
    ) as process:
        yield process


@pytest.fixture(scope="module")
def repo(relay):
    """A served announcement of this relay; issues referencing it are accepted."""
    client = Client(relay.ws_url)
    try:
        return accepted_repository(client, f"127.0.0.1:{relay.port}")
    finally:
        client.close()


def test_s10_1_publish_req_eose_live_and_close_with_websocket_client(relay, repo, connect):
    publisher, subscriber = connect(relay.ws_url), connect(relay.ws_url)
    stored = issue(repo, tags=[["t", "flow"]])
    assert publisher.publish(stored) == ["OK", stored.id, True, ""]

    assert subscriber.req("flow", {"#t": ["flow"]}) == [stored.to_json()]
    two_filters = subscriber.req("two", {"kinds": [30617], "#d": ["repo"]}, {"ids": [stored.id]})
    assert sorted(e["id"] for e in two_filters) == sorted([stored.id, repo.id])  # OR of filters
    subscriber.send("CLOSE", "two")

    live = issue(repo, tags=[["t", "flow"]])
    assert publisher.publish(live) == ["OK", live.id, True, ""]
    assert subscriber.expect("EVENT") == ["EVENT", "flow", live.to_json()]

    subscriber.send("CLOSE", "flow")
    subscriber.req("other", {"#t": ["other"]})
    after_close, other = issue(repo, tags=[["t", "flow"]]), issue(repo, tags=[["t", "other"]])
    publisher.publish(after_close)
    publisher.publish(other)
    # One writer per connection keeps order: had CLOSE not worked, after_close would come first.
    assert subscriber.expect("EVENT") == ["EVENT", "other", other.to_json()]


def test_nostr_sdk_publishes_fetches_and_receives_live(relay, repo):
    from nostr_sdk import Client as SdkClient
    from nostr_sdk import EventBuilder, Filter, Keys, Kind, RelayUrl, ReqTarget, Tag

    async def scenario() -> None:
        url = RelayUrl.parse(relay.ws_url)
        listener, sender = SdkClient(), SdkClient()
        for client in (listener, sender):
            await client.add_relay(url)
            await client.connect()
        keys = Keys.generate()
        notifications = listener.notifications()
        by_author = Filter().author(keys.public_key()).kind(Kind(1621))
        subscription = await listener.subscribe(ReqTarget.auto([by_author]))
        assert url in subscription.success

        repo_address = f"30617:{repo.pubkey}:{repo.d}"
        event = (
            EventBuilder(Kind(1621), "hello from rust-nostr")
            .tags([Tag.parse(["a", repo_address]), Tag.parse(["t", "sdk"])])
            .finalize(keys)
        )
        sent = await sender.send_event(event)
        assert sent.success == [url] and not sent.failed

        live_id = None
        for _ in range(10):  # EOSE and other notices may come first; bounded
            note = await asyncio.wait_for(notifications.next(), 5)
            if note.is_new_event():
                live_id = note.event.id().to_hex()
                break
        assert live_id == event.id().to_hex()

        fetched = await sender.fetch_events(
            ReqTarget.auto([Filter().author(keys.public_key()).hashtag("sdk")]),
            timedelta(seconds=5),
        )
        assert [e.id().to_hex() for e in fetched] == [event.id().to_hex()]
        assert fetched[0].content() == "hello from rust-nostr"
        await listener.unsubscribe(subscription.id)
        for client in (listener, sender):
            await client.disconnect()

    asyncio.run(scenario())
    stored = Client(relay.ws_url)
    try:
        [event] = stored.req("check", {"#t": ["sdk"]})
        assert event["content"] == "hello from rust-nostr"
    finally:
        stored.close()


def _with(obj: dict, **changes) -> dict:
    return {**obj, **changes}


def _bad_event_cases():
    """(frame text, expected first reply, id that must not be stored)."""
    good = signed(kind=1621).to_json()
    wrong_id = _with(signed().to_json(), content="edited after signing")
    bad_sig = _with(signed().to_json(), sig="ab" * 64)
    upper = signed().to_json()
    upper_frame = _with(upper, id=upper["id"].upper())
    return [
        pytest.param(
            json.dumps(["EVENT", wrong_id]),
            ["OK", wrong_id["id"], False, "invalid: bad event id"],
            wrong_id["id"],
            id="wrong-id",
        ),
        pytest.param(
            json.dumps(["EVENT", bad_sig]),
            ["OK", bad_sig["id"], False, "invalid: bad signature"],
            bad_sig["id"],
            id="bad-signature",
        ),
        pytest.param(
            json.dumps(["EVENT", upper_frame]),
            ["OK", upper_frame["id"], False, "invalid: id must be 64 lowercase hex characters"],
            upper["id"],
            id="uppercase-hex",
        ),
        pytest.param(
            "{not json", ["NOTICE", "invalid: message is not valid JSON"], None, id="non-json"
        ),
        pytest.param(
            json.dumps({"EVENT": good}),
            ["NOTICE", "invalid: message must be a non-empty JSON array"],
            None,
            id="not-an-array",
        ),
        pytest.param(
            json.dumps(["PUBLISH", good]),
            ["NOTICE", "invalid: unknown message type PUBLISH"],
            good["id"],
            id="unknown-verb",
        ),
        pytest.param(
            json.dumps(["REQ", "x" * 65, {}]),
            ["CLOSED", "x" * 65, "invalid: subscription id must be 1 to 64 characters"],
            None,
            id="65-char-subscription-id",
        ),
        pytest.param(
            json.dumps(["REQ", "hex", {"ids": ["not-hex"]}]),
            ["CLOSED", "hex", "invalid: 'ids' values must be 64 lowercase hex characters"],
            None,
            id="filter-with-non-hex-ids",
        ),
    ]


@pytest.mark.parametrize("frame, reply, unstored_id", _bad_event_cases())
def test_s10_1_bad_input_answered_nothing_stored_relay_still_serving(
    relay, repo, connect, frame, reply, unstored_id
):
    bad, bystander = connect(relay.ws_url), connect(relay.ws_url)
    bad.send_raw(frame)
    assert bad.recv() == reply
    if unstored_id is not None:
        assert bystander.req("check", {"ids": [unstored_id]}) == []
    good = issue(repo)
    assert bad.publish(good) == ["OK", good.id, True, ""]  # the same connection keeps working
    assert bystander.req("good", {"ids": [good.id]}) == [good.to_json()]


def test_s10_1_twenty_first_subscription_is_closed(relay, connect):
    client = connect(relay.ws_url)
    for n in range(20):
        assert client.req(f"s{n}", {"kinds": [1], "limit": 0}) == []
    client.send("REQ", "s20", {"kinds": [1]})
    assert client.recv() == [
        "CLOSED",
        "s20",
        "blocked: too many subscriptions (at most 20 per connection)",
    ]
    client.send("CLOSE", "s0")
    assert client.req("s20", {"kinds": [1], "limit": 0}) == []


def test_s10_1_oversize_message_notice_and_close_1009(relay, connect):
    big, bystander = connect(relay.ws_url), connect(relay.ws_url)
    event = signed(kind=1621, content="z" * 70_000)  # over the 64 KiB this relay was started with
    big.send("EVENT", event.to_json())
    assert big.recv() == ["NOTICE", "error: closing connection: message larger than 65536 bytes"]
    opcode, frame = big.ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and struct.unpack("!H", frame.data[:2])[0] == 1009
    assert bystander.req("check", {"ids": [event.id]}) == []


def test_s10_2_nip11_and_cors_over_real_http(relay):
    info = relay.nip11()
    assert info["supported_nips"] == [1, 11, 34, 77]
    assert info["supported_grasps"] == ["GRASP-01", "GRASP-02", "GRASP-06"]
    assert info["limitation"]["max_message_length"] == 65536
    assert f"127.0.0.1:{relay.port}" in info["description"]


def test_sigterm_closes_websockets_with_1001_and_exits_0(tmp_path):
    process = RelayProcess(tmp_path / "data").start()
    try:
        client = Client(process.ws_url)
        client.req("s", {})
        process.send_signal(signal.SIGTERM)
        opcode, frame = client.ws.recv_data_frame(control_frame=True)
        assert (
            opcode == websocket.ABNF.OPCODE_CLOSE and struct.unpack("!H", frame.data[:2])[0] == 1001
        )
        client.ws.send_close()
        assert process.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", process.port), timeout=1)
    finally:
        process.stop()
