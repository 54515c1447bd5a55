"""NIP-77 against an independent implementation: rust-nostr, through nostr-sdk (S17.3).

(a) Our initiator against nostr-sdk's ``LocalRelay`` (a real relay, in-process, answering
    NEG-OPEN with rust-negentropy) over a real websocket; and our responder's replies compared
    byte for byte with that relay's replies to the same messages.
(b) nostr-sdk's ``Client.sync`` against our responder runs against the real relay process, in
    ``tests/relay/test_nip77_process.py`` (the test-only mini relay it used before is gone: the
    relay itself now answers NIP-77, S17.3, which is the stronger test).

Events are signed with the project's ``grasp.nostr.event`` and are accepted by both sides.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Iterator

import pytest
import websocket

from grasp.nostr.event import Event, generate_secret_key, sign_event
from grasp.nostr.filters import Filter
from grasp.nostr.nip77 import NegentropyInitiator, NegentropyResponder, ReconcileResult
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
