"""NIP-77 served by the real relay, started by its CLI (S17.3), with nostr-sdk as the client.

nostr-sdk's ``Client.sync`` (rust-negentropy as the initiator, LMDB as its local store) runs
against ``grasp-relay`` over a real websocket: it must learn exactly which events it lacked
(and fetch them) and which the relay lacked (and upload them, through the GRASP write policy).
The limits are seen from outside: too many records is a ``NEG-ERR blocked:`` nostr-sdk
reports, too many sessions and malformed frames get ``blocked:``/``invalid:``, and a held
(purgatory) event is never offered.

The events are issues, comments and notes tagging one accepted repository, so the GRASP write
policy stores them (S15.1); ``--event-rate-limit 0`` lets a test publish hundreds at once.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Iterator

import nostr_sdk
import pytest

from grasp.nostr.event import Event, generate_secret_key, sign_event
from grasp.nostr.filters import Filter
from grasp.nostr.nip77 import NegentropyInitiator, ReconcileResult
from tests.support.relay import RelayClient, RelayProcess, accepted_repository
from tests.support.sdk_thread import SdkThread

OWNER = generate_secret_key()
KINDS = (1621, 1111, 1)
SDK_FILTER = nostr_sdk.Filter().kinds([nostr_sdk.Kind(k) for k in KINDS])
UNLIMITED = ("--event-rate-limit", "0")


@pytest.fixture(scope="module")
def sdk() -> Iterator[SdkThread]:
    with SdkThread() as thread:
        yield thread


@functools.cache
def _events(count: int, seed: int, address: str, base: int = 1_760_000_000) -> tuple[Event, ...]:
    rng = random.Random(seed)
    key = generate_secret_key()
    return tuple(
        sign_event(key, rng.choice(KINDS), [["a", address]], f"event {seed}/{n}", base + n // 3)
        for n in range(count)
    )


def events(repo: Event, count: int, seed: int) -> list[Event]:
    """NIP-34 traffic tagging ``repo``, a few per second so timestamps tie (signed once)."""
    return list(_events(count, seed, f"30617:{repo.pubkey}:{repo.d}"))


def ids(found: list[Event]) -> set[str]:
    return {e.id for e in found}


def hexes(event_ids) -> set[str]:
    return {event_id.to_hex() for event_id in event_ids}


def publish_all(client: RelayClient, batch: list[Event]) -> None:
    refused = [a for a in client.publish_all(batch) if a[2] is not True]
    assert not refused, refused[:3]


def stored_ids(client: RelayClient) -> set[str]:
    return {e["id"] for e in client.req("all", {"kinds": list(KINDS), "limit": 500})}


def sdk_sync(sdk, url, local, db_path, direction, dry_run=False):
    """nostr-sdk: save ``local`` in a fresh LMDB, then ``Client.sync`` against ``url``."""

    async def run() -> nostr_sdk.ClientSyncSummaryOutput:
        database = await nostr_sdk.NostrLmdb.open(db_path)
        client = nostr_sdk.ClientBuilder().database(database).build()
        await asyncio.gather(
            *(database.save_event(nostr_sdk.Event.from_json(e.to_json_text())) for e in local)
        )
        await client.add_relay(nostr_sdk.RelayUrl.parse(url))
        await client.connect()
        opts = nostr_sdk.SyncOptions().direction(direction)
        if dry_run:
            opts = opts.dry_run()
        try:
            return await client.sync(SDK_FILTER, opts=opts)
        finally:
            await client.disconnect()

    return sdk.run(run)


@pytest.fixture
def relay_with_repo(tmp_path):
    """``start(*args)``: a relay process with one accepted repository and a client on it."""
    started: list[tuple[RelayProcess, RelayClient]] = []

    def start(*args: str) -> tuple[RelayProcess, RelayClient, Event]:
        relay = RelayProcess(tmp_path / f"relay-{len(started)}", *UNLIMITED, *args).start()
        client = RelayClient(relay.ws_url, timeout=20)
        started.append((relay, client))
        domain = relay.http_url.removeprefix("http://")
        return relay, client, accepted_repository(client, domain, OWNER, "neg")

    yield start
    for relay, client in started:
        client.close()
        relay.stop()


def test_s17_3_nostr_sdk_client_sync_against_the_relay(sdk, relay_with_repo, tmp_path):
    relay, client, repo = relay_with_repo()
    shared = events(repo, 300, seed=1)
    on_relay, on_client = events(repo, 25, seed=2), events(repo, 20, seed=3)
    publish_all(client, shared + on_relay)
    out = sdk_sync(
        sdk, relay.ws_url, shared + on_client, str(tmp_path / "lmdb"), nostr_sdk.SyncDirection.BOTH
    )
    assert out.failed == {} and len(out.success) == 1
    report = out.report
    assert hexes(report.remote) == ids(on_relay)  # what nostr-sdk lacked ...
    assert hexes(report.received) == ids(on_relay)  # ... and then fetched with REQ
    assert hexes(report.local) == ids(on_client)  # what the relay lacked ...
    assert hexes(report.sent) == ids(on_client)  # ... uploaded with EVENT, accepted by policy
    assert stored_ids(client) == ids(shared + on_relay + on_client)


@pytest.mark.slow
def test_s17_3_nostr_sdk_sync_over_many_rounds_with_the_relays_frame_limit(
    sdk, relay_with_repo, tmp_path
):
    relay, client, repo = relay_with_repo("--negentropy-frame-size-limit", "4096")
    shared = events(repo, 2000, seed=4)
    on_relay, on_client = events(repo, 150, seed=5), events(repo, 150, seed=6)
    publish_all(client, shared + on_relay)
    out = sdk_sync(
        sdk,
        relay.ws_url,
        shared + on_client,
        str(tmp_path / "lmdb"),
        nostr_sdk.SyncDirection.DOWN,
        dry_run=True,
    )
    assert out.failed == {}
    assert hexes(out.report.remote) == ids(on_relay)
    assert hexes(out.report.local) == ids(on_client)
    assert not out.report.received and not out.report.sent


def test_s17_3_nostr_sdk_sees_neg_err_blocked_for_too_many_events(sdk, relay_with_repo, tmp_path):
    relay, client, repo = relay_with_repo("--negentropy-max-records", "10")
    publish_all(client, events(repo, 30, seed=7))
    out = sdk_sync(sdk, relay.ws_url, [], str(tmp_path / "lmdb"), nostr_sdk.SyncDirection.DOWN)
    assert len(out.success) == 0
    (reason,) = out.failed.values()
    assert "blocked: too many events (more than 10 match this filter)" in reason


def test_s17_3_malformed_and_excess_neg_frames_are_answered_precisely(relay_with_repo):
    relay, client, _ = relay_with_repo("--negentropy-max-sessions", "2")
    assert 77 in relay.nip11()["supported_nips"]
    answers = {}
    for name, frame in {
        "not hex": ["NEG-OPEN", "s1", {}, "zz"],
        "odd hex": ["NEG-OPEN", "s1", {}, "610"],
        "bad filter": ["NEG-OPEN", "s1", {"kinds": "x"}, "61"],
        "bad version": ["NEG-OPEN", "s1", {}, "60"],
        "too short": ["NEG-OPEN", "s1", {}],
        "unknown session": ["NEG-MSG", "nobody", "61"],
        "from a client": ["NEG-ERR", "s1", "blocked: no"],
    }.items():
        client.send(*frame)
        answers[name] = client.recv()
    for name in ("not hex", "odd hex", "bad filter", "too short", "from a client"):
        verb, sub, reason = answers[name]
        assert (verb, sub) == ("NEG-ERR", "s1") and reason.startswith("invalid: "), (name, reason)
    assert answers["unknown session"][0:2] == ["NEG-ERR", "nobody"]
    assert answers["unknown session"][2].startswith("closed: ")
    # a wrong protocol version is answered with the version we speak (negentropy v1)
    assert answers["bad version"] == ["NEG-MSG", "s1", "61"]
    client.send("NEG-OPEN", 7, {}, "61")
    verb, text = client.recv()
    assert verb == "NOTICE" and text.startswith("invalid: ")
    # the session bound: two open, the third is refused; closing one makes room
    for sub in ("a", "b"):
        client.send(*NegentropyInitiator([], sub, Filter()).open_frame())
        assert client.recv()[0] == "NEG-MSG"
    client.send(*NegentropyInitiator([], "c", Filter()).open_frame())
    verb, sub, reason = client.recv()
    assert (verb, sub) == ("NEG-ERR", "c") and reason.startswith("blocked: too many open")
    client.send("NEG-CLOSE", "a")
    client.send(*NegentropyInitiator([], "c", Filter()).open_frame())
    assert client.recv()[0:2] == ["NEG-MSG", "c"]


def reconcile(client: RelayClient, init: NegentropyInitiator) -> ReconcileResult:
    frame = init.open_frame()
    for _ in range(100):
        client.send(*frame)
        outcome = init.on_frame(client.recv())
        if isinstance(outcome, ReconcileResult):
            client.send(*init.close_frame())
            return outcome
        frame = outcome
    raise AssertionError("reconciliation did not end in 100 rounds")


def test_s17_3_held_events_are_never_offered(relay_with_repo):
    relay, client, repo = relay_with_repo()
    held = sign_event(OWNER, 30618, [["d", "neg"], ["refs/heads/main", "1" * 40]], "")
    ok = client.publish(held)
    assert ok[2] is True and ok[3].startswith("purgatory:"), ok  # waits for git data
    issue = events(repo, 1, seed=8)
    publish_all(client, issue)
    result = reconcile(client, NegentropyInitiator([], "all", Filter()))
    assert held.id not in result.need_ids
    assert {repo.id, *ids(issue)} <= result.need_ids


def test_s17_3_negentropy_off_with_zero_sessions(tmp_path):
    with RelayProcess(tmp_path / "off", "--negentropy-max-sessions", "0") as relay:
        assert 77 not in relay.nip11()["supported_nips"]
        client = RelayClient(relay.ws_url)
        try:
            client.send(*NegentropyInitiator([], "s", Filter()).open_frame())
            assert client.recv() == ["NOTICE", "invalid: unknown message type NEG-OPEN"]
        finally:
            client.close()
