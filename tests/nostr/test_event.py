"""NIP-01 events (S10.1): canonical id, BIP-340 signatures, and one specific reason per defect."""

import copy
import hashlib
import json

import pytest
from coincurve import PrivateKey, PublicKeyXOnly

from grasp.nostr.event import (
    Event,
    InvalidEvent,
    compute_event_id,
    generate_secret_key,
    public_key,
    sign_event,
    supersedes,
)

SECRET = "11" * 32

# The NIP-13 example event: an id and signature produced by another implementation.
NIP13_EVENT = {
    "id": "000006d8c378af1779d2feebc7603a125d99eca0ccf1085959b307f64e5dd358",
    "pubkey": "a48380f4cfcc1ad5378294fcac36439770f9c878dd880ffa94bb74ea54a6f243",
    "created_at": 1651794653,
    "kind": 1,
    "tags": [["nonce", "776797", "20"]],
    "content": "It's just me mining my own business",
    "sig": "284622fc0a3f4f1303455d5175f7ba962a3300d136085b9566801bc2e0699de0"
    "c7e31e44c81fb40ad9049173742e904713c3594a1da0fc5d2382a25c11aba977",
}


def _good() -> dict:
    return sign_event(
        SECRET, 1, [["t", "x"], ["e", "ab" * 32]], "hello", created_at=1_700_000_000
    ).to_json()


def test_s10_1_foreign_event_parses_and_verifies():
    event = Event.from_json(NIP13_EVENT)
    assert event.tags == (("nonce", "776797", "20"),)
    assert event.to_json() == NIP13_EVENT


def test_bip340_test_vector_0():
    """BIP-340 vector 0: secret 3, aux and message all zero."""
    secret = "00" * 31 + "03"
    assert public_key(secret) == "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"
    sig = PrivateKey(bytes.fromhex(secret)).sign_schnorr(bytes(32), bytes(32))
    assert sig.hex() == (
        "e907831f80848d1069a5371b402410364bdf1c5f8307b0084c55f1ce2dca8215"
        "25f66a4a85ea8b71e482a74f382d2ce5ebeee8fdb2172f477df4900d310536c0"
    )
    assert PublicKeyXOnly(bytes.fromhex(public_key(secret))).verify(sig, bytes(32))


def test_s10_1_id_serialisation_escapes_exactly_as_nip01():
    """Seven escapes, other control chars as \\u00XX, non-ASCII / U+2028 / '/' verbatim."""
    content = 'a\nb"c\\d\re\tf\bg\fh\x01i\u2028j/é☃'
    preimage = (
        '[0,"' + "ab" * 32 + '",1,1,[["t","é"]],"a\\nb\\"c\\\\d\\re\\tf\\bg\\fh\\u0001i\u2028j/é☃"]'
    )
    expected = hashlib.sha256(preimage.encode("utf-8")).hexdigest()
    assert compute_event_id("ab" * 32, 1, 1, [("t", "é")], content) == expected


def test_sign_event_round_trips_through_validation():
    event = sign_event(SECRET, 30617, [["d", "repo"], ["clone", "https://a", "https://b"]], "☃")
    parsed = Event.from_json(json.loads(json.dumps(event.to_json())))
    assert parsed == event
    assert parsed.pubkey == public_key(SECRET)
    assert json.loads(event.to_json_text()) == event.to_json()


def test_generated_keys_are_distinct_and_usable():
    first, second = generate_secret_key(), generate_secret_key()
    assert first != second and len(first) == 64
    Event.from_json(sign_event(first, 1, [], "x").to_json())


def _mutate(path, value):
    def apply(obj):
        if path == "delete":
            del obj[value]
        else:
            obj[path] = value
        return obj

    return apply


def _resign_with(**fields):
    """An event whose id is recomputed after the change, so only the changed field is wrong."""

    def apply(obj):
        obj.update(fields)
        obj["id"] = compute_event_id(
            obj["pubkey"], obj["created_at"], obj["kind"], obj["tags"], obj["content"]
        )
        return obj

    return apply


REJECTIONS = [
    ("wrong id", _mutate("id", "0" * 64), "invalid: bad event id"),
    ("changed content", _mutate("content", "tampered"), "invalid: bad event id"),
    ("bad signature", _mutate("sig", "1" * 128), "invalid: bad signature"),
    ("signature of other event", _resign_with(content="other"), "invalid: bad signature"),
    (
        "uppercase id",
        lambda o: {**o, "id": o["id"].upper()},
        "invalid: id must be 64 lowercase hex characters",
    ),
    (
        "uppercase pubkey",
        lambda o: {**o, "pubkey": o["pubkey"].upper()},
        "invalid: pubkey must be 64 lowercase hex characters",
    ),
    (
        "uppercase sig",
        lambda o: {**o, "sig": o["sig"].upper()},
        "invalid: sig must be 128 lowercase hex characters",
    ),
    (
        "short id",
        lambda o: {**o, "id": o["id"][:63]},
        "invalid: id must be 64 lowercase hex characters",
    ),
    (
        "short pubkey",
        lambda o: {**o, "pubkey": o["pubkey"][:62]},
        "invalid: pubkey must be 64 lowercase hex characters",
    ),
    (
        "short sig",
        lambda o: {**o, "sig": o["sig"][:127]},
        "invalid: sig must be 128 lowercase hex characters",
    ),
    ("id not a string", _mutate("id", 5), "invalid: id must be 64 lowercase hex characters"),
    (
        "id with newline",
        lambda o: {**o, "id": o["id"][:63] + "\n"},
        "invalid: id must be 64 lowercase hex characters",
    ),
    (
        "float created_at",
        _mutate("created_at", 1_700_000_000.0),
        "invalid: created_at must be an integer",
    ),
    ("bool created_at", _mutate("created_at", True), "invalid: created_at must be an integer"),
    (
        "string created_at",
        _mutate("created_at", "1700000000"),
        "invalid: created_at must be an integer",
    ),
    (
        "negative created_at",
        _mutate("created_at", -1),
        "invalid: created_at must be between 0 and 9223372036854775807",
    ),
    ("bool kind", _mutate("kind", False), "invalid: kind must be an integer"),
    ("float kind", _mutate("kind", 1.0), "invalid: kind must be an integer"),
    ("kind too large", _mutate("kind", 65536), "invalid: kind must be between 0 and 65535"),
    (
        "tags not a list",
        _mutate("tags", {"t": "x"}),
        "invalid: tags must be a list of lists of strings",
    ),
    ("tag not a list", _mutate("tags", ["t"]), "invalid: tags must be a list of lists of strings"),
    (
        "tag with number",
        _mutate("tags", [["t", 1]]),
        "invalid: tags must be a list of lists of strings",
    ),
    (
        "tag with null",
        _mutate("tags", [["t", None]]),
        "invalid: tags must be a list of lists of strings",
    ),
    ("content not a string", _mutate("content", None), "invalid: content must be a string"),
    (
        "lone surrogate in content",
        _mutate("content", "a\ud800b"),
        "invalid: event text is not valid UTF-8 (lone surrogate)",
    ),
    (
        "lone surrogate in tag",
        _mutate("tags", [["t", "\udfff"]]),
        "invalid: event text is not valid UTF-8 (lone surrogate)",
    ),
    ("missing sig", _mutate("delete", "sig"), "invalid: event has no 'sig' field"),
    ("missing tags", _mutate("delete", "tags"), "invalid: event has no 'tags' field"),
    (
        "pubkey not on curve",
        _resign_with(pubkey="ff" * 32),
        "invalid: pubkey is not a valid secp256k1 public key",
    ),
]


@pytest.mark.parametrize(
    "mutate, message", [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_s10_1_each_defect_has_its_own_reason(mutate, message):
    obj = mutate(copy.deepcopy(_good()))
    with pytest.raises(InvalidEvent) as info:
        Event.from_json(obj)
    assert info.value.message == message
    assert str(info.value) == message
    assert info.value.result.accepted is False and info.value.result.message == message


@pytest.mark.parametrize("obj", [None, [], "event", 5])
def test_non_object_is_invalid_without_id(obj):
    with pytest.raises(InvalidEvent) as info:
        Event.from_json(obj)
    assert info.value.message == "invalid: event must be a JSON object"
    assert info.value.event_id is None


def test_invalid_event_carries_the_sent_id_for_the_ok_frame():
    obj = _good()
    obj["sig"] = "1" * 128
    with pytest.raises(InvalidEvent) as info:
        Event.from_json(obj)
    assert info.value.event_id == obj["id"]


def test_lone_surrogate_from_json_escape_is_rejected():
    """json.loads turns "\\ud800" into a lone surrogate: it cannot be hashed as UTF-8."""
    text = json.dumps(_good()).replace('"hello"', '"\\ud800"')
    with pytest.raises(InvalidEvent, match="lone surrogate"):
        Event.from_json(json.loads(text))


def test_empty_tag_and_extra_fields_are_tolerated():
    event = sign_event(SECRET, 1, [[], ["d"]], "x")
    obj = {**event.to_json(), "extra": 1}
    assert Event.from_json(obj) == event
    assert event.first_tag("d") == "" and event.d == ""


def test_tag_accessors():
    event = sign_event(
        SECRET, 30617, [["d", "r"], ["t", "a"], ["t"], ["t", "b", "x"], ["d", "s"]], ""
    )
    assert event.d == "r"
    assert event.first_tag("t") == "a"
    assert event.first_tag("nope") is None
    assert event.tag_values("t") == ["a", "b"]
    assert event.tags_named("t") == [("t", "a"), ("t",), ("t", "b", "x")]
    assert event.address == f"30617:{event.pubkey}:r"
    assert sign_event(SECRET, 10002, [], "").address == f"10002:{public_key(SECRET)}:"
    assert sign_event(SECRET, 1, [], "").address is None


def test_supersedes_is_later_then_lowest_id():
    a = sign_event(SECRET, 30618, [["d", "r"]], "a", created_at=10)
    b = sign_event(SECRET, 30618, [["d", "r"]], "b", created_at=10)
    later = sign_event(SECRET, 30618, [["d", "r"]], "c", created_at=11)
    low, high = sorted([a, b], key=lambda e: e.id)
    assert supersedes(low, high) and not supersedes(high, low)
    assert supersedes(later, low) and not supersedes(low, later)
