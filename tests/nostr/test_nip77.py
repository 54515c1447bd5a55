"""NIP-77 message layer (S17.3): frames, the per-connection responder, the initiator."""

from __future__ import annotations

import hashlib

import pytest

from grasp.nostr.filters import Filter
from grasp.nostr.nip77 import (
    NegClose,
    NegentropyInitiator,
    NegentropyRefused,
    NegentropyResponder,
    NegErr,
    NegMsg,
    NegOpen,
    Nip77Error,
    ReconcileResult,
    parse_frame,
)


def _hex_id(n: int) -> str:
    return hashlib.sha256(n.to_bytes(8, "big")).hexdigest()


EVENTS = {_hex_id(i): (1_700_000_000 + i // 3, 1 if i % 2 else 30617) for i in range(200)}
ALL = Filter()


def items_for(flt: Filter) -> list[tuple[int, str]]:
    """A stand-in for the store query: kinds is the only key these tests use."""
    return [(ts, i) for i, (ts, kind) in EVENTS.items() if flt.kinds is None or kind in flt.kinds]


def initiator(items, sub="s1", flt=ALL, **kwargs) -> NegentropyInitiator:
    return NegentropyInitiator(items, sub, flt, **kwargs)


def run(init: NegentropyInitiator, responder: NegentropyResponder) -> ReconcileResult:
    frame = init.open_frame()
    for _ in range(1000):
        reply = responder.handle(frame)
        outcome = init.on_frame(reply)
        if isinstance(outcome, ReconcileResult):
            assert responder.handle(init.close_frame()) is None
            return outcome
        frame = outcome
    raise AssertionError("no end")


# --- frames ---------------------------------------------------------------------------------


def test_s17_3_frames_round_trip():
    flt = Filter(kinds={30617}, tags={"d": ["repo"]})
    frames = [
        NegOpen("a", flt, b"\x61\x00"),
        NegMsg("a", b"\x61"),
        NegClose("a"),
        NegErr("a", "blocked: too many"),
    ]
    for frame in frames:
        assert parse_frame(frame.to_json()) == frame
    assert NegOpen("a", flt, b"\x61\x00").to_json() == [
        "NEG-OPEN",
        "a",
        {"kinds": [30617], "#d": ["repo"]},
        "6100",
    ]


def test_s17_3_neg_err_may_carry_the_record_limit_as_fourth_element():
    assert parse_frame(["NEG-ERR", "a", "blocked: big", 100_000]) == NegErr("a", "blocked: big")


def test_s17_3_uppercase_hex_is_accepted():
    assert parse_frame(["NEG-MSG", "a", "61AB"]) == NegMsg("a", b"\x61\xab")


@pytest.mark.parametrize(
    "frame, sub_id, reason",
    [
        ("NEG-OPEN", None, "not a NIP-77 frame"),
        ([], None, "not a NIP-77 frame"),
        ([["NEG-MSG"]], None, "not a NIP-77 frame"),
        (["REQ", "a", {}], None, "not a NIP-77 frame"),
        (["NEG-MSG"], None, "needs a subscription id"),
        (["NEG-MSG", 7, "61"], None, "needs a subscription id"),
        (["NEG-MSG", "", "61"], "", "1 to 64 characters"),
        (["NEG-MSG", "x" * 65, "61"], "x" * 65, "1 to 64 characters"),
        (["NEG-MSG", "a"], "a", "NEG-MSG takes 3 elements, got 2"),
        (["NEG-OPEN", "a", {}, "61", "extra"], "a", "NEG-OPEN takes 4 elements"),
        (["NEG-CLOSE", "a", "61"], "a", "NEG-CLOSE takes 2 elements"),
        (["NEG-MSG", "a", 61], "a", "must be a hex string"),
        (["NEG-MSG", "a", "6"], "a", "non-empty hex of even length"),
        (["NEG-MSG", "a", ""], "a", "non-empty hex of even length"),
        (["NEG-MSG", "a", "61 00"], "a", "non-empty hex of even length"),
        (["NEG-MSG", "a", "zz"], "a", "non-empty hex of even length"),
        (["NEG-OPEN", "a", {"kinds": "x"}, "61"], "a", "'kinds' must be a list"),
        (["NEG-OPEN", "a", [], "61"], "a", "filter must be a JSON object"),
        (["NEG-ERR", "a", 5], "a", "reason must be a string"),
    ],
)
def test_s17_3_malformed_frames_are_invalid_with_a_reason(frame, sub_id, reason):
    with pytest.raises(Nip77Error) as info:
        parse_frame(frame)
    assert info.value.sub_id == sub_id
    assert info.value.message.startswith("invalid: ")
    assert reason in info.value.message


# --- responder ------------------------------------------------------------------------------


def test_s17_3_responder_answers_neg_open_with_neg_msg():
    responder = NegentropyResponder(items_for)
    reply = responder.handle(["NEG-OPEN", "s", {}, "6100000200"])
    assert reply[:2] == ["NEG-MSG", "s"]
    # IdList over the whole universe (bound: infinity, no prefix) with varint(200) = 81 48 ids
    assert reply[2].startswith("610000028148")
    ids = bytes.fromhex(reply[2])[6:]
    assert {ids[i : i + 32].hex() for i in range(0, len(ids), 32)} == set(EVENTS)
    assert responder.session_ids == {"s"}


def test_s17_3_responder_reconciles_with_our_initiator_under_a_filter():
    ours = {i: v for i, v in EVENTS.items() if v[1] == 1}
    mine = [(ts, i) for i, (ts, _) in list(ours.items())[10:]] + [(5, _hex_id(10_001))]
    flt = Filter(kinds={1})
    result = run(initiator(mine, flt=flt), NegentropyResponder(items_for))
    assert result.need_ids == set(list(ours)[:10])
    assert result.have_ids == {_hex_id(10_001)}


def test_s17_3_responder_passes_the_parsed_filter_to_items_for():
    seen: list[Filter] = []
    responder = NegentropyResponder(lambda f: seen.append(f) or [])
    responder.handle(["NEG-OPEN", "s", {"kinds": [30618], "#d": ["x"]}, "6100000200"])
    assert seen == [Filter(kinds={30618}, tags={"d": ["x"]})]


def test_s17_3_neg_open_with_the_same_sub_id_replaces_the_session():
    responder = NegentropyResponder(items_for)
    first = initiator([], sub="s")
    responder.handle(first.open_frame())
    second = initiator([(ts, i) for i, (ts, _) in EVENTS.items()], sub="s")
    result = run(second, responder)
    assert result == ReconcileResult(frozenset(), frozenset())
    assert len(responder) == 0


def test_s17_3_too_many_sessions_are_blocked():
    responder = NegentropyResponder(items_for, max_sessions=2)
    for sub in ("a", "b"):
        assert responder.handle(["NEG-OPEN", sub, {}, "6100000200"])[0] == "NEG-MSG"
    reply = responder.handle(["NEG-OPEN", "c", {}, "6100000200"])
    assert reply[:2] == ["NEG-ERR", "c"]
    assert reply[2].startswith("blocked: too many open negentropy sessions")
    # Re-opening an existing id is a replacement, not one more session.
    assert responder.handle(["NEG-OPEN", "a", {}, "6100000200"])[0] == "NEG-MSG"
    responder.handle(["NEG-CLOSE", "b"])
    assert responder.handle(["NEG-OPEN", "c", {}, "6100000200"])[0] == "NEG-MSG"


def test_s17_3_too_many_records_are_blocked():
    responder = NegentropyResponder(items_for, max_records=199)
    reply = responder.handle(["NEG-OPEN", "s", {}, "6100000200"])
    assert reply == ["NEG-ERR", "s", "blocked: too many events (more than 199 match this filter)"]
    assert len(responder) == 0
    exactly = NegentropyResponder(items_for, max_records=200)
    assert exactly.handle(["NEG-OPEN", "s", {}, "6100000200"])[0] == "NEG-MSG"


def test_s17_3_records_beyond_the_cap_are_never_read():
    read = []

    def endless(_flt):
        n = 0
        while True:
            read.append(n)
            yield (n, _hex_id(n))
            n += 1

    reply = NegentropyResponder(endless, max_records=50).handle(["NEG-OPEN", "s", {}, "61"])
    assert reply[2].startswith("blocked:")
    assert len(read) == 51


def test_s17_3_unknown_sub_id_is_closed():
    responder = NegentropyResponder(items_for)
    reply = responder.handle(["NEG-MSG", "nope", "6100000200"])
    assert reply == ["NEG-ERR", "nope", "closed: no open negentropy session with this id"]
    assert responder.handle(["NEG-CLOSE", "nope"]) is None


def test_s17_3_malformed_negentropy_message_is_invalid_and_closes_the_session():
    responder = NegentropyResponder(items_for)
    responder.handle(["NEG-OPEN", "s", {}, "6100000200"])
    reply = responder.handle(["NEG-MSG", "s", "61000003"])
    assert reply == [
        "NEG-ERR",
        "s",
        ("invalid: unknown range mode 3 (0 skip, 1 fingerprint, 2 id list)"),
    ]
    assert len(responder) == 0
    assert responder.handle(["NEG-MSG", "s", "6100000200"])[2].startswith("closed:")


def test_s17_3_malformed_frame_for_an_open_session_closes_it():
    responder = NegentropyResponder(items_for)
    responder.handle(["NEG-OPEN", "s", {}, "6100000200"])
    assert responder.handle(["NEG-MSG", "s", "xyz"])[:2] == ["NEG-ERR", "s"]
    assert len(responder) == 0


def test_s17_3_bad_version_in_neg_open_is_invalid():
    reply = NegentropyResponder(items_for).handle(["NEG-OPEN", "s", {}, "00"])
    assert reply == ["NEG-ERR", "s", "invalid: invalid protocol version byte 0x00"]


def test_s17_3_frames_without_a_sub_id_get_a_notice():
    reply = NegentropyResponder(items_for).handle(["NEG-MSG", 5, "61"])
    assert reply[0] == "NOTICE" and reply[1].startswith("invalid:")


def test_s17_3_a_client_sending_neg_err_is_told_off():
    reply = NegentropyResponder(items_for).handle(["NEG-ERR", "s", "blocked: x"])
    assert reply[:2] == ["NEG-ERR", "s"] and reply[2].startswith("invalid:")


def test_s17_3_store_failure_is_the_relays_error_not_the_clients():
    def broken(_flt):
        raise OSError("disk gone")

    reply = NegentropyResponder(broken).handle(["NEG-OPEN", "s", {}, "6100000200"])
    assert reply == ["NEG-ERR", "s", "error: could not query stored events"]


def test_s17_3_duplicate_records_from_the_store_count_once():
    doubled = lambda _f: [(1, _hex_id(1)), (1, _hex_id(1)), (2, _hex_id(2))]  # noqa: E731
    result = run(initiator([(2, _hex_id(2))]), NegentropyResponder(doubled))
    assert result.need_ids == {_hex_id(1)}


def test_s17_3_responder_frame_limit_bounds_replies_and_still_reconciles():
    responder = NegentropyResponder(items_for, frame_size_limit=4096)
    init = initiator([])
    frame = init.open_frame()
    sizes = []
    for _ in range(100):
        reply = responder.handle(frame)
        sizes.append(len(reply[2]) // 2)
        frame = init.on_frame(reply)
        if isinstance(frame, ReconcileResult):
            break
    assert frame.need_ids == set(EVENTS)
    assert max(sizes) <= 4096 and len(sizes) >= 2


def test_s17_3_responder_refuses_a_bad_frame_limit():
    with pytest.raises(ValueError, match="4096"):
        NegentropyResponder(items_for, frame_size_limit=100)


# --- initiator ------------------------------------------------------------------------------


def test_s17_3_initiator_neg_err_raises_refused():
    init = initiator([])
    init.open_frame()
    with pytest.raises(NegentropyRefused) as info:
        init.on_frame(["NEG-ERR", "s1", "blocked: too many events"])
    assert info.value.reason == "blocked: too many events"


def test_s17_3_initiator_ignores_no_frame_of_another_sub():
    init = initiator([])
    init.open_frame()
    with pytest.raises(Nip77Error, match="another subscription"):
        init.on_frame(["NEG-MSG", "other", "61"])


def test_s17_3_initiator_reports_malformed_replies_as_invalid():
    init = initiator([])
    init.open_frame()
    with pytest.raises(Nip77Error, match="invalid: unknown range mode 9"):
        init.on_frame(["NEG-MSG", "s1", "61000009"])


def test_s17_3_initiator_is_done_after_its_result():
    init = initiator([])
    init.open_frame()
    result = init.on_frame(["NEG-MSG", "s1", "61"])
    assert result == ReconcileResult(frozenset(), frozenset()) and init.rounds == 1
    assert init.close_frame() == ["NEG-CLOSE", "s1"]
    with pytest.raises(ValueError, match="already finished"):
        init.on_frame(["NEG-MSG", "s1", "61"])
