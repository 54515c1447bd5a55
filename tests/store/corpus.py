"""Test data of the store contract: the six-event corpus, filter cases, NIP-01 by definition.

Kept apart from tests/store/contract.py so the contract reads as behaviour, and so the
definition of NIP-01 used by the property test is written independently of the SQL.
"""

from __future__ import annotations

from hypothesis import strategies as st

from grasp.nostr.event import Event, compute_event_id, public_key, sign_event
from grasp.nostr.filters import Filter

ALICE, BOB, CAROL = "a1" * 32, "b2" * 32, "c3" * 32
ALL = ["a1", "a2", "b1", "b2", "c1", "c2"]


def six_events() -> dict[str, Event]:
    a1 = sign_event(ALICE, 1, [["t", "x"]], "a1", created_at=100)
    return {
        "a1": a1,
        "a2": sign_event(ALICE, 1, [["t", "y"]], "a2", created_at=200),
        "b1": sign_event(BOB, 1, [["t", "x"], ["t", "y"]], "b1", created_at=200),
        "b2": sign_event(BOB, 7, [["e", a1.id], ["t", "z", "extra"]], "b2", created_at=150),
        "c1": sign_event(CAROL, 1, [], "c1", created_at=200),
        "c2": sign_event(CAROL, 30023, [["d", "art"], ["T", "Upper"]], "c2", created_at=50),
    }


def newest_first(corpus: dict[str, Event], names: list[str]) -> list[str]:
    """NIP-01 order: created_at descending, equal created_at by lowest id."""
    return sorted(names, key=lambda n: (-corpus[n].created_at, corpus[n].id))


def names_of(corpus: dict[str, Event], events: list[Event]) -> list[str]:
    by_id = {e.id: n for n, e in corpus.items()}
    return [by_id[e.id] for e in events]


def _pk(secret: str) -> str:
    return public_key(secret)


# (name, filter JSON built from the corpus, expected members, limit applied to them)
CASES = [
    ("everything", lambda c: {}, ALL, None),
    ("ids", lambda c: {"ids": [c["a1"].id, c["b2"].id]}, ["a1", "b2"], None),
    ("unknown id", lambda c: {"ids": ["ff" * 32]}, [], None),
    ("empty ids", lambda c: {"ids": []}, [], None),
    ("authors", lambda c: {"authors": [_pk(ALICE)]}, ["a1", "a2"], None),
    (
        "two authors",
        lambda c: {"authors": [_pk(ALICE), _pk(CAROL)]},
        ["a1", "a2", "c1", "c2"],
        None,
    ),
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
    ("author AND tag", lambda c: {"authors": [_pk(ALICE)], "#t": ["x"]}, ["a1"], None),
    ("kind AND since", lambda c: {"kinds": [1], "since": 150}, ["a2", "b1", "c1"], None),
    ("limit newest first, ties lowest id", lambda c: {"limit": 2}, ALL, 2),
    ("limit within a kind", lambda c: {"kinds": [1], "limit": 1}, ["a1", "a2", "b1", "c1"], 1),
    ("limit zero", lambda c: {"limit": 0}, [], None),
]


def deletion(
    secret: str,
    e: tuple[str, ...] | list[str] = (),
    a: tuple[str, ...] | list[str] = (),
    created_at: int = 100,
) -> Event:
    """A NIP-09 kind-5 request for ids ``e`` and addresses ``a``."""
    tags = [*[["e", i] for i in e], *[["a", x] for x in a], ["k", "1"]]
    return sign_event(secret, 5, tags, "", created_at=created_at)


def fake_event(n: int, kinds: tuple[int, ...] = (1, 7, 1618, 30617, 30618)) -> Event:
    """Unsigned but well-formed: the store trusts its caller, and this keeps the setup fast."""
    pubkey = f"{n % 50:064x}"
    kind = kinds[n % len(kinds)]
    tags = (("d", f"repo{n % 200}"), ("t", f"topic{n % 30}"), ("p", f"{n % 70:064x}"))
    created_at = 1_000_000 + n
    event_id = compute_event_id(pubkey, created_at, kind, tags, str(n))
    return Event(event_id, pubkey, created_at, kind, tags, str(n), "0" * 128)


# --- the property test's world: few authors, kinds, tag values and seconds, so many ties ------

PUBKEYS = [f"{n:064x}" for n in (1, 2, 3)]
TAG_VALUES = ["x", "y", "z"]


@st.composite
def _events(draw: st.DrawFn) -> Event:
    pubkey = draw(st.sampled_from(PUBKEYS))
    kind = draw(st.sampled_from([1, 7, 1618]))  # regular kinds: every event is kept
    created_at = draw(st.integers(min_value=1, max_value=6))
    pairs = st.tuples(st.sampled_from("tp"), st.sampled_from(TAG_VALUES))
    tags = tuple(draw(st.lists(pairs, max_size=3)))
    content = draw(st.text(max_size=4))
    event_id = compute_event_id(pubkey, created_at, kind, tags, content)
    return Event(event_id, pubkey, created_at, kind, tags, content, "0" * 128)


def _maybe_set(elements: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | st.frozensets(elements, max_size=2)


_filters = st.builds(
    Filter,
    authors=_maybe_set(st.sampled_from(PUBKEYS)),
    kinds=_maybe_set(st.sampled_from([1, 7, 1618, 5])),
    tags=st.dictionaries(
        st.sampled_from("tp"),
        st.frozensets(st.sampled_from(TAG_VALUES), min_size=1, max_size=2),
        max_size=2,
    ),
    since=st.none() | st.integers(0, 7),
    until=st.none() | st.integers(0, 7),
    limit=st.none() | st.integers(0, 8),
)

event_lists = st.lists(_events(), max_size=25)
filter_lists = st.lists(_filters, min_size=1, max_size=2)


def admitted(flt: Filter, e: Event) -> bool:
    """NIP-01 by definition: every present key admits the event."""
    return (
        (flt.authors is None or e.pubkey in flt.authors)
        and (flt.kinds is None or e.kind in flt.kinds)
        and (flt.since is None or e.created_at >= flt.since)
        and (flt.until is None or e.created_at <= flt.until)
        and all(any(t[0] == k and t[1] in v for t in e.tags) for k, v in flt.tags.items())
    )


def nip01_expected(corpus: list[Event], flt: Filter, cap: int) -> list[str]:
    """Ids one filter must return: admitted, newest first, lowest id on ties, cut at limit."""
    limit = min(cap if flt.limit is None else flt.limit, cap)
    unique = {e.id: e for e in corpus if admitted(flt, e)}.values()
    ordered = sorted(unique, key=lambda e: (-e.created_at, e.id))
    return [e.id for e in ordered][:limit]
