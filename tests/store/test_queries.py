"""NIP-01 REQ semantics on the SQLite store (S10.1, S11.1), checked against Filter.matches too."""

import pytest

from grasp.nostr.event import Event, public_key, sign_event
from grasp.nostr.filters import Filter
from grasp.store.sqlite import EventStore

ALICE, BOB, CAROL = "a1" * 32, "b2" * 32, "c3" * 32


@pytest.fixture(scope="module")
def corpus():
    a1 = sign_event(ALICE, 1, [["t", "x"]], "a1", created_at=100)
    events = {
        "a1": a1,
        "a2": sign_event(ALICE, 1, [["t", "y"]], "a2", created_at=200),
        "b1": sign_event(BOB, 1, [["t", "x"], ["t", "y"]], "b1", created_at=200),
        "b2": sign_event(BOB, 7, [["e", a1.id], ["t", "z", "extra"]], "b2", created_at=150),
        "c1": sign_event(CAROL, 1, [], "c1", created_at=200),
        "c2": sign_event(CAROL, 30023, [["d", "art"], ["T", "Upper"]], "c2", created_at=50),
    }
    return events


@pytest.fixture()
def store(tmp_path, corpus):
    with EventStore(tmp_path / "events.sqlite3") as store:
        for event in corpus.values():
            assert store.save(event).stored
        yield store


def newest_first(corpus, names):
    """NIP-01 order: created_at descending, equal created_at by lowest id."""
    return sorted(names, key=lambda n: (-corpus[n].created_at, corpus[n].id))


def names_of(corpus, events):
    by_id = {e.id: n for n, e in corpus.items()}
    return [by_id[e.id] for e in events]


ALL = ["a1", "a2", "b1", "b2", "c1", "c2"]

CASES = [
    ("everything", lambda c: {}, ALL, None),
    ("ids", lambda c: {"ids": [c["a1"].id, c["b2"].id]}, ["a1", "b2"], None),
    ("unknown id", lambda c: {"ids": ["ff" * 32]}, [], None),
    ("empty ids", lambda c: {"ids": []}, [], None),
    ("authors", lambda c: {"authors": [public_key(ALICE)]}, ["a1", "a2"], None),
    ("two authors", lambda c: {"authors": [public_key(ALICE), public_key(CAROL)]}, ["a1", "a2", "c1", "c2"], None),
    ("kinds", lambda c: {"kinds": [7, 30023]}, ["b2", "c2"], None),
    ("tag x", lambda c: {"#t": ["x"]}, ["a1", "b1"], None),
    ("tag x or y", lambda c: {"#t": ["x", "y"]}, ["a1", "a2", "b1"], None),
    ("tag value with extra fields", lambda c: {"#t": ["z"]}, ["b2"], None),
    ("e tag", lambda c: {"#e": [c["a1"].id]}, ["b2"], None),
    ("d tag", lambda c: {"#d": ["art"]}, ["c2"], None),
    ("uppercase tag letter", lambda c: {"#T": ["Upper"]}, ["c2"], None),
    ("tags are case-sensitive", lambda c: {"#t": ["Upper"]}, [], None),
    ("two tag letters AND", lambda c: {"#t": ["x"], "#e": [c["a1"].id]}, [], None),
    ("since inclusive", lambda c: {"since": 150}, ["a2", "b1", "b2", "c1"], None),
    ("until inclusive", lambda c: {"until": 150}, ["a1", "b2", "c2"], None),
    ("since == until", lambda c: {"since": 150, "until": 150}, ["b2"], None),
    ("since > until", lambda c: {"since": 151, "until": 150}, [], None),
    ("author AND tag", lambda c: {"authors": [public_key(ALICE)], "#t": ["x"]}, ["a1"], None),
    ("kind AND since", lambda c: {"kinds": [1], "since": 150}, ["a2", "b1", "c1"], None),
    ("limit newest first, ties lowest id", lambda c: {"limit": 2}, ALL, 2),
    ("limit within a kind", lambda c: {"kinds": [1], "limit": 1}, ["a1", "a2", "b1", "c1"], 1),
    ("limit zero", lambda c: {"limit": 0}, [], None),
]


@pytest.mark.parametrize("build, members, limit", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_filter_semantics(store, corpus, build, members, limit):
    flt = Filter.from_json(build(corpus))
    expected = newest_first(corpus, members)[:limit]
    got = store.query([flt])
    assert names_of(corpus, got) == expected
    # live fan-out (Filter.matches) and the stored query must agree
    matching = [n for n in ALL if flt.matches(corpus[n])]
    if flt.limit != 0:
        assert newest_first(corpus, matching)[:limit] == expected


def test_tie_order_is_by_lowest_id(store, corpus):
    ties = store.query([Filter(since=200, until=200)])
    assert [e.id for e in ties] == sorted(corpus[n].id for n in ("a2", "b1", "c1"))


def test_filters_are_ored_without_duplicates(store, corpus):
    got = store.query([Filter(tags={"t": ["x"]}), Filter(authors=[public_key(BOB)])])
    assert names_of(corpus, got) == newest_first(corpus, ["a1", "b1", "b2"])


def test_limit_applies_per_filter(store, corpus):
    got = store.query([Filter(authors=[public_key(ALICE)], limit=1), Filter(authors=[public_key(CAROL)], limit=1)])
    assert names_of(corpus, got) == newest_first(corpus, ["a2", "c1"])


def test_limit_cap_clamps_missing_and_large_limits(store):
    assert len(store.query([Filter()], limit_cap=3)) == 3
    assert len(store.query([Filter(limit=100)], limit_cap=2)) == 2
    assert len(store.query([Filter(limit=1)], limit_cap=2)) == 1


def test_query_json_returns_stored_text(store, corpus):
    import json

    texts = store.query_json([Filter(ids=[corpus["b2"].id])])
    assert [json.loads(t) for t in texts] == [corpus["b2"].to_json()]


def test_get_and_contains(store, corpus):
    assert store.get(corpus["c2"].id) == corpus["c2"]
    assert store.contains(corpus["c2"].id)
    assert store.get("00" * 32) is None and not store.contains("00" * 32)
    assert store.count() == len(corpus)


def test_text_survives_storage_exactly(tmp_path):
    event = sign_event(ALICE, 1, [["t", "nul\x00in tag"]], "nul \x00 é ☃ \u2028 \"q\"")
    with EventStore(tmp_path / "e.sqlite3") as store:
        store.save(event)
        got = store.get(event.id)
    assert got == event
    Event.from_json(got.to_json())  # still verifies: nothing was re-encoded
