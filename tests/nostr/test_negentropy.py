"""Negentropy protocol v1 (S17.3): codec, storage, each mode, errors, and reconciliation."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grasp.nostr.negentropy import Negentropy, NegentropyError, NegentropyStorage
from grasp.nostr.negentropy_codec import (
    INFINITY,
    BoundWriter,
    MessageReader,
    Mode,
    encode_varint,
)
from grasp.nostr.negentropy_storage import fingerprint_of

V1 = b"\x61"
EE = bytes([0xEE]) * 32


def _id(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(8, "big")).digest()


def storage(items) -> NegentropyStorage:
    return NegentropyStorage.from_items(items)


def reconcile(client_items, server_items, client_limit=0, server_limit=0):
    """Run a whole reconciliation ours↔ours; return (client, messages both ways)."""
    client = Negentropy(storage(client_items), client_limit)
    server = Negentropy(storage(server_items), server_limit)
    messages = [client.initiate()]
    for _ in range(10_000):
        messages.append(server.reconcile(messages[-1]))
        following = client.reconcile(messages[-1])
        if following is None:
            return client, messages
        messages.append(following)
    raise AssertionError("reconciliation did not terminate")


# --- varints --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, encoded",
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8100"),
        (16383, "ff7f"),
        (16384, "818000"),
        (2**64 - 1, "81ffffffffffffffff7f"),
    ],
)
def test_s17_3_varint_is_base128_most_significant_first(value, encoded):
    assert encode_varint(value).hex() == encoded
    assert MessageReader(bytes.fromhex(encoded)).varint() == value


def test_s17_3_truncated_varint_is_refused():
    with pytest.raises(NegentropyError, match="truncated varint"):
        MessageReader(b"\x81\x80").varint()


def test_s17_3_varint_over_64_bits_is_refused():
    with pytest.raises(NegentropyError, match="exceeds 64 bits"):
        MessageReader(bytes.fromhex("82808080808080808000")).varint()
    with pytest.raises(NegentropyError, match="longer than 10 bytes"):
        MessageReader(b"\x80" * 11 + b"\x01").varint()


# --- bounds ---------------------------------------------------------------------------------


def test_s17_3_bound_timestamps_are_deltas_and_infinity_is_zero():
    writer = BoundWriter()
    encoded = (
        writer.encode((100, b"")) + writer.encode((150, b"\xab")) + writer.encode((INFINITY, b""))
    )
    # 100 → 1+100; 150 → 1+50, prefix of one byte; infinity → 0
    assert encoded.hex() == "6500" + "33" + "01ab" + "0000"
    reader = MessageReader(encoded)
    assert [reader.bound() for _ in range(3)] == [(100, b""), (150, b"\xab"), (INFINITY, b"")]
    assert reader.at_end()


def test_s17_3_timestamps_saturate_at_infinity_like_the_reference():
    reader = MessageReader(encode_varint(2**64 - 1) + b"\x00" + encode_varint(5) + b"\x00")
    assert reader.bound() == (2**64 - 2, b"")
    assert reader.bound()[0] == INFINITY


def test_s17_3_descending_bounds_are_refused():
    message = V1 + bytes.fromhex("0b015000") + bytes.fromhex("01014000")
    with pytest.raises(NegentropyError, match="bounds must ascend"):
        Negentropy(storage([])).reconcile(message)


def test_s17_3_equal_bounds_are_an_empty_range_not_an_error():
    message = V1 + bytes.fromhex("0b015000") + bytes.fromhex("01015000")
    assert Negentropy(storage([])).reconcile(message) == V1


def test_s17_3_bound_prefix_over_32_bytes_is_refused():
    message = V1 + b"\x00" + encode_varint(33) + bytes(33) + b"\x00"
    with pytest.raises(NegentropyError, match="prefix of 33 bytes"):
        Negentropy(storage([])).reconcile(message)


# --- fingerprints and storage -----------------------------------------------------------------


def test_s17_3_fingerprint_is_sha256_of_little_endian_sum_and_count():
    a, b = _id(1), _id(2)
    total = (int.from_bytes(a, "little") + int.from_bytes(b, "little")) % 2**256
    expected = hashlib.sha256(total.to_bytes(32, "little") + b"\x02").digest()[:16]
    assert storage([(5, a), (7, b)]).fingerprint(0, 2) == expected
    assert fingerprint_of(0, 0) == hashlib.sha256(bytes(32) + b"\x00").digest()[:16]


def test_s17_3_fingerprint_sum_wraps_mod_2_256():
    top = bytes([0xFF]) * 32
    one = b"\x01" + bytes(31)
    # (2^256 - 1) + 1 wraps to 0
    assert storage([(1, top), (2, one)]).fingerprint(0, 2) == fingerprint_of(0, 2)


def test_s17_3_storage_sorts_by_timestamp_then_id():
    items = [(5, b"\x02" * 32), (3, b"\x09" * 32), (5, b"\x01" * 32)]
    sealed = storage(items)
    assert [sealed.item(i) for i in range(3)] == sorted(items)
    assert sealed.lower_bound((5, b"\x02"), 0, 3) == 2
    assert sealed.lower_bound((5, b""), 0, 3) == 1
    assert sealed.lower_bound((INFINITY, b""), 0, 3) == 3


@pytest.mark.parametrize(
    "timestamp, item_id, reason",
    [
        (INFINITY, EE, "out of range"),
        (-1, EE, "out of range"),
        (1, b"\x01" * 31, "32 bytes"),
    ],
)
def test_s17_3_storage_refuses_bad_items(timestamp, item_id, reason):
    with pytest.raises(ValueError, match=reason):
        NegentropyStorage().insert(timestamp, item_id)


def test_s17_3_storage_must_be_sealed_once_and_holds_no_duplicates():
    with pytest.raises(ValueError, match="duplicate"):
        storage([(1, EE), (1, EE)])
    unsealed = NegentropyStorage()
    with pytest.raises(ValueError, match="sealed"):
        Negentropy(unsealed)
    sealed = storage([])
    with pytest.raises(ValueError, match="sealed"):
        sealed.insert(1, EE)
    with pytest.raises(ValueError, match="sealed"):
        sealed.seal()


@pytest.mark.parametrize("limit", [1, 4095, -1])
def test_s17_3_frame_size_limit_below_4096_is_refused(limit):
    with pytest.raises(ValueError, match="4096"):
        Negentropy(storage([]), limit)


# --- the reference's protocol-version test vectors (negentropy test/protoversion.pl) ----------


def test_s17_3_reference_vector_empty_id_list_gets_the_servers_ids():
    server = Negentropy(storage([(12345, EE)]))
    assert server.reconcile(bytes.fromhex("6100000200")).hex() == "6100000201" + EE.hex()


def test_s17_3_reference_vector_unknown_version_gets_our_version_byte():
    server = Negentropy(storage([(12345, EE)]))
    assert server.reconcile(bytes.fromhex("62aabbccddeeff")) == V1
    # ... and the same session then serves the v1 retry.
    assert server.reconcile(bytes.fromhex("6100000200")).hex() == "6100000201" + EE.hex()


def test_s17_3_initiator_refuses_an_unsupported_version_answer():
    client = Negentropy(storage([]))
    client.initiate()
    with pytest.raises(NegentropyError, match="unsupported protocol version 0x62"):
        client.reconcile(b"\x62")


@pytest.mark.parametrize(
    "message, reason",
    [
        (b"", "empty message"),
        (b"\x00", "invalid protocol version byte 0x00"),
        (b"\x70", "invalid protocol version byte 0x70"),
        (V1 + b"\x00\x00\x03", "unknown range mode 3"),
        (V1 + b"\x00\x00\x01" + bytes(15), "truncated fingerprint"),
        (V1 + b"\x00\x00\x02\x02" + bytes(40), "truncated id list"),
        (V1 + b"\x00\x00\x02" + encode_varint(2**60), "truncated id list"),
        (V1 + b"\x00\x05\x01\x02", "truncated bound id prefix"),
        (V1 + b"\x81", "truncated varint"),
    ],
)
def test_s17_3_malformed_messages_raise_one_error_with_a_reason(message, reason):
    with pytest.raises(NegentropyError, match=reason) as info:
        Negentropy(storage([(1, EE)])).reconcile(message)
    assert reason in info.value.reason


# --- each mode --------------------------------------------------------------------------------


def test_s17_3_initial_message_of_a_small_set_is_one_id_list():
    items = [(10, _id(i)) for i in range(3)]
    client = Negentropy(storage(items))
    ids = b"".join(sorted(i for _, i in items))
    assert client.initiate() == V1 + b"\x00\x00\x02\x03" + ids
    with pytest.raises(ValueError, match="already initiated"):
        client.initiate()


def test_s17_3_initial_message_of_a_large_set_is_16_fingerprints():
    items = [(i, _id(i)) for i in range(100)]
    reader = MessageReader(Negentropy(storage(items)).initiate())
    reader.version()
    modes = []
    while not reader.at_end():
        bound = reader.bound()
        modes.append(reader.mode())
        reader.fingerprint()
    assert modes == [Mode.FINGERPRINT] * 16
    assert bound == (INFINITY, b"")


def test_s17_3_matching_fingerprints_end_the_reconciliation_in_one_round():
    items = [(i % 5, _id(i)) for i in range(500)]
    client, messages = reconcile(items, items)
    assert len(messages) == 2
    assert messages[1] == V1  # the responder skips everything
    assert client.have_ids == client.need_ids == set()


def test_s17_3_skip_ranges_are_answered_with_nothing():
    server = Negentropy(storage([(1, EE)]))
    assert server.reconcile(V1 + b"\x00\x00\x00") == V1


def test_s17_3_id_list_to_the_initiator_yields_have_and_need():
    mine, both, theirs = _id(1), _id(2), _id(3)
    client = Negentropy(storage([(1, mine), (2, both)]))
    client.initiate()
    reply = V1 + b"\x00\x00\x02\x02" + both + theirs
    assert client.reconcile(reply) is None
    assert client.have_ids == {mine}
    assert client.need_ids == {theirs}


def test_s17_3_ties_on_timestamp_use_id_prefix_bounds():
    # 64 items in one second: bucket bounds must separate them by id prefix.
    items = [(7, _id(i)) for i in range(64)]
    reader = MessageReader(Negentropy(storage(items)).initiate())
    reader.version()
    first = reader.bound()
    assert first[0] == 7 and 1 <= len(first[1]) <= 32
    client, _ = reconcile(items[:40], items[20:])
    assert client.have_ids == {i for _, i in items[:20]}
    assert client.need_ids == {i for _, i in items[40:]}


def test_s17_3_frame_size_limit_bounds_every_message_and_adds_rounds():
    client_items = [(i, _id(i)) for i in range(0, 6000, 2)]
    server_items = [(i, _id(i)) for i in range(0, 6000, 3)]
    free_client, free = reconcile(client_items, server_items)
    client, limited = reconcile(client_items, server_items, 4096, 4096)
    assert all(len(m) <= 4096 for m in limited)
    assert max(len(m) for m in free) > 4096  # the limit really changed something
    assert len(limited) > len(free)
    assert (
        client.have_ids
        == free_client.have_ids
        == {i for _, i in client_items} - {i for _, i in server_items}
    )
    assert client.need_ids == free_client.need_ids


def test_s17_3_frame_limited_id_list_is_cut_where_the_reference_cuts_it():
    """The reference adds ids while (frame so far + ids so far) <= limit - 200, then ends the
    IdList at the first id it left out and fingerprints the rest to infinity."""
    items = [(1000 + i, _id(i)) for i in range(200)]
    server = Negentropy(storage(items), 4096)
    reply = server.reconcile(bytes.fromhex("6100000200"))
    sent = (4096 - 200 - 1) // 32 + 1  # 122: the check happens before each id is added
    cut = sorted(items)[sent]
    reader = MessageReader(reply)
    reader.version()
    assert reader.bound() == cut
    assert reader.mode() is Mode.ID_LIST
    assert len(reader.id_list()) == sent
    assert reader.bound() == (INFINITY, b"") and reader.mode() is Mode.FINGERPRINT
    assert reader.fingerprint() == storage(items).fingerprint(sent, 200)
    assert reader.at_end() and len(reply) <= 4096


# --- property: ours↔ours gives exactly the set differences -------------------------------------


def _random_sets(seed: int, common: int, only_a: int, only_b: int, span: int):
    """Two item lists sharing ``common`` items; an id never appears with two timestamps."""
    rng = random.Random(seed)
    prefix = rng.randbytes(32)
    used: set[bytes] = set()

    def item():
        while True:
            # Ids sharing prefixes stress minimal bounds. Not more than 28 bytes: the fingerprint
            # is an additive sum, and ids left with only 2 random bytes (which are the high
            # bytes of the little-endian sum) collide in small ranges — seed 1038 found two
            # pairs with equal sums. Real ids are sha256 outputs; 4 random bytes make a
            # collision as unlikely here as it is there.
            shared = rng.choice((0, 0, 1, 2, 28))
            item_id = prefix[:shared] + rng.randbytes(32 - shared)
            if item_id not in used:
                used.add(item_id)
                return rng.randrange(span), item_id

    shared_items = [item() for _ in range(common)]
    a = shared_items + [item() for _ in range(only_a)]
    b = shared_items + [item() for _ in range(only_b)]
    rng.shuffle(a)
    return a, b


@pytest.mark.parametrize(
    "limits",
    [(0, 0), (4096, 4096), (4096, 0), (0, 4096), (60_000, 5000)],
    ids=["no-limit", "both-4096", "client-4096", "relay-4096", "mixed"],
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    common=st.integers(0, 3000),
    only_a=st.integers(0, 2000),
    only_b=st.integers(0, 2000),
    span=st.sampled_from([1, 3, 50, 10**6, 2**63]),
)
def test_s17_3_property_reconciliation_finds_exactly_the_differences(
    limits, seed, common, only_a, only_b, span
):
    """Sets of 0-5,000 items, overlapping, ties on timestamps: exactly the set differences."""
    a, b = _random_sets(seed, common, only_a, only_b, span)
    client, messages = reconcile(a, b, *limits)
    ids_a, ids_b = {i for _, i in a}, {i for _, i in b}
    assert client.have_ids == ids_a - ids_b
    assert client.need_ids == ids_b - ids_a
    for limit, sent in ((limits[0], messages[0::2]), (limits[1], messages[1::2])):
        if limit:
            assert all(len(m) <= limit for m in sent)
