"""NIP-01 filters: strict parsing (S10.1 ``CLOSED invalid:``) and in-memory matching."""

import pytest

from grasp.nostr.event import sign_event
from grasp.nostr.filters import MAX_VALUES, Filter, InvalidFilter

A, B = "aa" * 32, "bb" * 32


def test_parse_every_key():
    flt = Filter.from_json(
        {
            "ids": [A],
            "authors": [B],
            "kinds": [1, 30617],
            "#d": ["x"],
            "#T": ["y"],
            "since": 5,
            "until": 9,
            "limit": 3,
        }
    )
    assert flt == Filter(
        ids={A},
        authors={B},
        kinds={1, 30617},
        tags={"d": ["x"], "T": ["y"]},
        since=5,
        until=9,
        limit=3,
    )
    assert Filter.from_json(flt.to_json()) == flt


@pytest.mark.parametrize(
    "obj, message",
    [
        ([], "invalid: filter must be a JSON object"),
        ({"ids": ["AA" * 32]}, "invalid: 'ids' values must be 64 lowercase hex characters"),
        ({"ids": ["ab" * 16]}, "invalid: 'ids' values must be 64 lowercase hex characters"),
        ({"ids": "ab"}, "invalid: 'ids' must be a list of strings"),
        (
            {"authors": [A[:-1] + "g"]},
            "invalid: 'authors' values must be 64 lowercase hex characters",
        ),
        ({"#e": ["note1xyz"]}, "invalid: '#e' values must be 64 lowercase hex characters"),
        ({"#p": [1]}, "invalid: '#p' must be a list of strings"),
        ({"kinds": [1.0]}, "invalid: 'kinds' values must be integers between 0 and 65535"),
        ({"kinds": [True]}, "invalid: 'kinds' values must be integers between 0 and 65535"),
        ({"kinds": [70000]}, "invalid: 'kinds' values must be integers between 0 and 65535"),
        ({"kinds": 1}, "invalid: 'kinds' must be a list of integers"),
        ({"since": "1"}, "invalid: 'since' must be a non-negative integer"),
        ({"until": -1}, "invalid: 'until' must be a non-negative integer"),
        ({"limit": 1.5}, "invalid: 'limit' must be a non-negative integer"),
        ({"limit": None}, "invalid: 'limit' must be a non-negative integer"),
        ({"search": "x"}, "invalid: unsupported filter key 'search'"),
        ({"#t": ["a\ud800"]}, "invalid: '#t' values must be valid UTF-8 (lone surrogate)"),
        ({"#dd": ["x"]}, "invalid: unsupported filter key '#dd'"),
        ({"ids": [A] * (MAX_VALUES + 1)}, f"invalid: 'ids' has more than {MAX_VALUES} values"),
    ],
)
def test_bad_filters_are_invalid_with_reason(obj, message):
    with pytest.raises(InvalidFilter) as info:
        Filter.from_json(obj)
    assert info.value.message == message


EVENT = sign_event(
    "22" * 32,
    7,
    [["t", "x"], ["t", "y"], ["d", "r"], ["e", A, "wss://relay"], ["q"]],
    "",
    created_at=100,
)


@pytest.mark.parametrize(
    "obj, expected",
    [
        ({}, True),
        ({"ids": [EVENT.id]}, True),
        ({"ids": [A]}, False),
        ({"ids": []}, False),
        ({"authors": [EVENT.pubkey, A]}, True),
        ({"authors": [A]}, False),
        ({"kinds": [1, 7]}, True),
        ({"kinds": [1]}, False),
        ({"#t": ["y"]}, True),
        ({"#t": ["z"]}, False),
        ({"#e": [A]}, True),
        ({"#q": [""]}, False),  # a tag without a value has nothing to match
        ({"#t": ["x"], "#d": ["other"]}, False),
        ({"since": 100, "until": 100}, True),
        ({"since": 101}, False),
        ({"until": 99}, False),
        ({"limit": 0}, True),  # limit bounds stored results only, never matching
        ({"kinds": [7], "authors": [A]}, False),
    ],
)
def test_matches(obj, expected):
    assert Filter.from_json(obj).matches(EVENT) is expected


def test_matches_nothing():
    assert Filter(ids=[]).matches_nothing
    assert Filter(tags={"t": []}).matches_nothing
    assert Filter(since=5, until=4).matches_nothing
    assert not Filter(since=5, until=5).matches_nothing
    assert not Filter().matches_nothing


def test_filters_are_hashable_and_comparable():
    assert hash(Filter(kinds=[1])) == hash(Filter.from_json({"kinds": [1]}))
    assert Filter(tags={"d": ["x"]}) == Filter.from_json({"#d": ["x"]})
