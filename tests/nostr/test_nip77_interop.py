"""NIP-77 against an independent implementation: rust-nostr, through nostr-sdk (S17.3).

(a) Our initiator against nostr-sdk's ``LocalRelay`` (a real relay, in-process, answering
    NEG-OPEN with rust-negentropy) over a real websocket; and our responder's replies compared
    byte for byte with that relay's replies to the same messages.
(b) nostr-sdk's ``Client.sync`` (rust-negentropy as initiator, LMDB as its local store) against
    our responder, served by the test-only relay of ``tests/support/nip77_relay.py``.

Events are signed with the project's ``grasp.nostr.event`` and are accepted by both sides.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
from collections.abc import Iterator

import nostr_sdk
import pytest
import websocket

from grasp.nostr.event import Event, generate_secret_key, sign_event
from grasp.nostr.filters import Filter
from grasp.nostr.nip77 import NegentropyInitiator, NegentropyResponder, ReconcileResult
from tests.support.nip77_relay import MiniNip77Relay
from tests.support.sdk_thread import SdkThread, local_relay

#: rust-nostr's relay answers with replies of at most this many bytes (seen on the wire).
RUST_NOSTR_FRAME_LIMIT = 60_000
REPO = "30617:" + "a" * 64 + ":grasp"


def make_events(count: int, seed: int) -> list[Event]:
    return list(_signed_events(count, seed))


@functools.cache
def _signed_events(count: int, seed: int, base: int = 1_760_000_000) -> tuple[Event, ...]:
    """NIP-34-ish issues and comments, a few per second so timestamps tie (signed once)."""
    rng = random.Random(seed)
    key = generate_secret_key()
    events = []
    for n in range(count):
        kind = rng.choice((1621, 1111, 1))
        tags = [["a", REPO], ["t", f"seed-{seed}"]]
        events.append(sign_event(key, kind, tags, f"event {seed}/{n}", base + n // 3))
    return tuple(events)


@pytest.fixture(scope="module")
def sdk() -> Iterator[SdkThread]:
    with SdkThread() as thread:
        yield thread


class Ws:
    """A NIP-01 websocket client (websocket-client, gevent-cooperative in this process)."""

    def __init__(self, url: str) -> None:
        self.conn = websocket.create_connection(url, timeout=20)

    def send(self, frame: list) -> None:
        self.conn.send(json.dumps(frame))

    def recv(self) -> list:
        return json.loads(self.conn.recv())

    def ask(self, frame: list) -> list:
        self.send(frame)
        return self.recv()

    def publish(self, events: list[Event]) -> None:
        for event in events:
            self.send(["EVENT", event.to_json()])
        answers = [self.recv() for _ in events]
        refused = [a for a in answers if a[0] != "OK" or a[2] is not True]
        assert not refused, refused[:3]

    def close(self) -> None:
        self.conn.close()


def reconcile_over(ws: Ws, init: NegentropyInitiator) -> ReconcileResult:
    frame = init.open_frame()
    for _ in range(500):
        outcome = init.on_frame(ws.ask(frame))
        if isinstance(outcome, ReconcileResult):
            ws.send(init.close_frame())
            return outcome
        frame = outcome
    raise AssertionError("reconciliation did not end in 500 rounds")


def items(events: list[Event]) -> list[tuple[int, str]]:
    return [(e.created_at, e.id) for e in events]


def ids(events: list[Event]) -> set[str]:
    return {e.id for e in events}


# --- (a) our initiator against rust-nostr's relay -------------------------------------------


@pytest.mark.parametrize(
    "common, only_ours, only_theirs, our_limit",
    [
        (300, 20, 30, 0),
        pytest.param(2000, 150, 150, 4096, marks=pytest.mark.slow),
        (0, 0, 2500, 0),  # their IdList reply exceeds their frame limit: several rounds
        pytest.param(1500, 1500, 0, 0, marks=pytest.mark.slow),
    ],
)
def test_s17_3_our_initiator_against_nostr_sdk_local_relay(
    sdk, common, only_ours, only_theirs, our_limit
):
    shared = make_events(common, seed=1)
    ours, theirs = make_events(only_ours, seed=2), make_events(only_theirs, seed=3)
    with local_relay(sdk) as url:
        ws = Ws(url)
        try:
            ws.publish(shared + theirs)
            init = NegentropyInitiator(
                items(shared + ours), "sync-1", Filter(), frame_size_limit=our_limit
            )
            result = reconcile_over(ws, init)
        finally:
            ws.close()
    assert result.need_ids == ids(theirs)
    assert result.have_ids == ids(ours)
    if only_theirs >= 2500:
        assert init.rounds > 1


def test_s17_3_our_initiator_with_a_filter_against_nostr_sdk_local_relay(sdk):
    events = make_events(400, seed=4)
    issues = [e for e in events if e.kind == 1621]
    mine = issues[: len(issues) // 2]
    with local_relay(sdk) as url:
        ws = Ws(url)
        try:
            ws.publish(events)
            init = NegentropyInitiator(items(mine), "issues", Filter(kinds={1621}))
            result = reconcile_over(ws, init)
        finally:
            ws.close()
    assert result.need_ids == ids(issues) - ids(mine)
    assert result.have_ids == set()


@pytest.mark.parametrize(
    "relay_count, client_count, overlap",
    [
        (3000, 2900, 2800),
        (500, 0, 0),
        pytest.param(4000, 4000, 3990, marks=pytest.mark.slow),
        (2500, 0, 0),  # their 60,000-byte frame limit cuts the IdList: the cut must match too
    ],
)
def test_s17_3_our_responder_replies_byte_for_byte_like_rust_nostr(
    sdk, relay_count, client_count, overlap
):
    relay_events = make_events(relay_count, seed=5)
    client_events = relay_events[:overlap] + make_events(client_count - overlap, seed=6)
    ours = NegentropyResponder(
        lambda _f: items(relay_events), frame_size_limit=RUST_NOSTR_FRAME_LIMIT
    )
    init = NegentropyInitiator(items(client_events), "cmp", Filter())
    compared = 0
    with local_relay(sdk) as url:
        ws = Ws(url)
        try:
            ws.publish(relay_events)
            frame = init.open_frame()
            for _ in range(200):
                theirs = ws.ask(frame)
                assert ours.handle(frame) == theirs
                compared += 1
                frame = init.on_frame(theirs)
                if isinstance(frame, ReconcileResult):
                    break
        finally:
            ws.close()
    assert frame.need_ids == ids(relay_events) - ids(client_events)
    assert frame.have_ids == ids(client_events) - ids(relay_events)
    assert compared >= 1


# --- (b) nostr-sdk's Client.sync against our responder ----------------------------------------


def sdk_sync(
    sdk: SdkThread,
    url: str,
    local: list[Event],
    db_path: str,
    flt: nostr_sdk.Filter,
    direction: nostr_sdk.SyncDirection,
    dry_run: bool = False,
):
    async def run() -> nostr_sdk.ClientSyncSummaryOutput:
        database = await nostr_sdk.NostrLmdb.open(db_path)
        client = nostr_sdk.ClientBuilder().database(database).build()
        for start in range(0, len(local), 500):  # one save at a time costs ~12 ms each
            await asyncio.gather(
                *(
                    database.save_event(nostr_sdk.Event.from_json(event.to_json_text()))
                    for event in local[start : start + 500]
                )
            )
        await client.add_relay(nostr_sdk.RelayUrl.parse(url))
        await client.connect()
        opts = nostr_sdk.SyncOptions().direction(direction)
        if dry_run:
            opts = opts.dry_run()
        try:
            return await client.sync(flt, opts=opts)
        finally:
            await client.disconnect()

    return sdk.run(run)


def hexes(event_ids) -> set[str]:
    return {event_id.to_hex() for event_id in event_ids}


def test_s17_3_nostr_sdk_client_sync_against_our_responder(sdk, tmp_path):
    shared = make_events(600, seed=7)
    on_relay, on_client = make_events(45, seed=8), make_events(35, seed=9)
    with MiniNip77Relay(shared + on_relay) as relay:
        out = sdk_sync(
            sdk,
            relay.url,
            shared + on_client,
            str(tmp_path / "lmdb"),
            nostr_sdk.Filter(),
            nostr_sdk.SyncDirection.BOTH,
        )
        assert out.failed == {} and len(out.success) == 1
        report = out.report
        assert hexes(report.remote) == ids(on_relay)  # what nostr-sdk lacked ...
        assert hexes(report.received) == ids(on_relay)  # ... and then fetched with REQ
        assert hexes(report.local) == ids(on_client)  # the ids we lacked ...
        assert hexes(report.sent) == ids(on_client)  # ... and it uploaded with EVENT
        assert relay.verbs["NEG-OPEN"] == 1
        assert set(relay.events) == ids(shared + on_relay + on_client)


@pytest.mark.slow
def test_s17_3_nostr_sdk_sync_over_many_rounds_with_our_frame_limit(sdk, tmp_path):
    shared = make_events(3000, seed=10)
    on_relay, on_client = make_events(200, seed=11), make_events(200, seed=12)
    with MiniNip77Relay(shared + on_relay, frame_size_limit=4096) as relay:
        out = sdk_sync(
            sdk,
            relay.url,
            shared + on_client,
            str(tmp_path / "lmdb"),
            nostr_sdk.Filter().kinds(
                [nostr_sdk.Kind(1621), nostr_sdk.Kind(1111), nostr_sdk.Kind(1)]
            ),
            nostr_sdk.SyncDirection.DOWN,
            dry_run=True,
        )
        assert out.failed == {}
        assert hexes(out.report.remote) == ids(on_relay)
        assert hexes(out.report.local) == ids(on_client)
        assert not out.report.received and not out.report.sent
        assert relay.verbs["NEG-MSG"] >= 2
        assert len(relay.events) == len(shared + on_relay)  # dry run: nothing uploaded


def test_s17_3_nostr_sdk_sees_our_neg_err_for_too_many_events(sdk, tmp_path):
    with MiniNip77Relay(make_events(50, seed=13), max_records=10) as relay:
        out = sdk_sync(
            sdk,
            relay.url,
            [],
            str(tmp_path / "lmdb"),
            nostr_sdk.Filter(),
            nostr_sdk.SyncDirection.DOWN,
        )
        assert relay.verbs["NEG-OPEN"] == 1
        assert len(out.success) == 0
        (reason,) = out.failed.values()
        assert "too many events" in reason
