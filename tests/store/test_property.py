"""Property: for any events and any filter, the SQLite query equals the NIP-01 definition.

The definition is spelled out independently of both the SQL and ``Filter.matches``: keep
what every key admits, order newest first with lowest id on ties, cut at the limit.
"""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grasp.nostr.event import Event, compute_event_id
from grasp.nostr.filters import Filter
from grasp.store.sqlite import EventStore

PUBKEYS = [f"{n:064x}" for n in (1, 2, 3)]
TAG_VALUES = ["x", "y", "z"]


@st.composite
def events(draw):
    pubkey = draw(st.sampled_from(PUBKEYS))
    kind = draw(st.sampled_from([1, 7, 1618]))  # regular kinds: every event is kept
    created_at = draw(st.integers(min_value=1, max_value=6))  # few values: many ties
    tags = tuple(
        (name, value)
        for name, value in draw(st.lists(st.tuples(st.sampled_from("tp"), st.sampled_from(TAG_VALUES)), max_size=3))
    )
    content = draw(st.text(max_size=4))
    event_id = compute_event_id(pubkey, created_at, kind, tags, content)
    return Event(event_id, pubkey, created_at, kind, tags, content, "0" * 128)


def maybe_set(elements):
    return st.none() | st.frozensets(elements, max_size=2)


filters = st.builds(
    Filter,
    authors=maybe_set(st.sampled_from(PUBKEYS)),
    kinds=maybe_set(st.sampled_from([1, 7, 1618, 5])),
    tags=st.dictionaries(st.sampled_from("tp"), st.frozensets(st.sampled_from(TAG_VALUES), min_size=1, max_size=2), max_size=2),
    since=st.none() | st.integers(0, 7),
    until=st.none() | st.integers(0, 7),
    limit=st.none() | st.integers(0, 8),
)


def admitted(flt: Filter, e: Event) -> bool:
    return (
        (flt.authors is None or e.pubkey in flt.authors)
        and (flt.kinds is None or e.kind in flt.kinds)
        and (flt.since is None or e.created_at >= flt.since)
        and (flt.until is None or e.created_at <= flt.until)
        and all(any(t[0] == k and t[1] in v for t in e.tags) for k, v in flt.tags.items())
    )


def nip01_expected(corpus: list[Event], flt: Filter, cap: int) -> list[str]:
    limit = min(cap if flt.limit is None else flt.limit, cap)
    ordered = sorted({e.id: e for e in corpus if admitted(flt, e)}.values(), key=lambda e: (-e.created_at, e.id))
    return [e.id for e in ordered][:limit]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpus=st.lists(events(), max_size=25), flts=st.lists(filters, min_size=1, max_size=2))
def test_query_equals_nip01_definition(corpus, flts):
    cap = 10
    with tempfile.TemporaryDirectory() as tmp, EventStore(Path(tmp) / "events.sqlite3") as store:
        for event in corpus:
            store.save(event)
        got = [e.id for e in store.query(flts, limit_cap=cap)]
    union = {i for flt in flts for i in nip01_expected(corpus, flt, cap)}
    by_id = {e.id: e for e in corpus}
    assert got == sorted(union, key=lambda i: (-by_id[i].created_at, i))
    for flt in flts:  # live fan-out agrees with the same definition
        assert [flt.matches(e) for e in corpus] == [admitted(flt, e) for e in corpus]
