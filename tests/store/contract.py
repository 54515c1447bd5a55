"""The event store contract (S11, S19.1): behaviour every engine must show, run on each.

dulwich's ``ObjectStoreTests`` pattern: :class:`EventStoreContract` is a mixin that pytest does
not collect by itself (its name does not start with ``Test``); ``tests/store/test_sqlite.py``
and ``tests/store/test_postgres.py`` subclass it and provide two fixtures:

- ``new_store``: a callable returning a context manager of a fresh, empty store;
- ``clear_store``: a callable emptying a store (the property test reuses one store per run);
- ``failing_tag_value``: ``failing_tag_value(store, value)`` is a context manager during which
  the database itself refuses tag rows of that value with an error naming "disk on fire".

:class:`HeldContract` covers purgatory's tables (S9.1, grasp/store/held.py) the same way.

Everything here goes through the :class:`grasp.store.base.EventStore` interface only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import gevent
import pytest
from gevent.pool import Pool
from hypothesis import HealthCheck, given, settings

from grasp.nostr.event import Event, public_key, sign_event
from grasp.nostr.filters import Filter
from grasp.nostr.results import Result
from grasp.store.base import EventStore, SaveOutcome
from grasp.store.held import ExpiredRow, HeldChanges, HeldRow, HeldSnapshot, PlaceholderRow
from tests.store import corpus as c

NewStore = Callable[[], AbstractContextManager[EventStore]]


def _all(store: EventStore) -> list[Event]:
    return store.query([Filter()])


class QueryContract:
    """NIP-01 REQ semantics (S10.1, S11.1), checked against ``Filter.matches`` too."""

    @pytest.fixture()
    def store(self, new_store: NewStore) -> Iterator[EventStore]:
        with new_store() as store:
            yield store

    @pytest.fixture()
    def corpus(self) -> dict[str, Event]:
        return c.six_events()

    @pytest.fixture()
    def filled(self, store: EventStore, corpus: dict[str, Event]) -> EventStore:
        for event in corpus.values():
            assert store.save(event).stored
        return store

    @pytest.mark.parametrize(
        "build, members, limit", [case[1:] for case in c.CASES], ids=[case[0] for case in c.CASES]
    )
    def test_s10_1_filter_semantics(self, filled, corpus, build, members, limit):
        flt = Filter.from_json(build(corpus))
        expected = c.newest_first(corpus, members)[:limit]
        assert c.names_of(corpus, filled.query([flt])) == expected
        # live fan-out (Filter.matches) and the stored query must agree
        matching = [n for n in c.ALL if flt.matches(corpus[n])]
        if flt.limit != 0:
            assert c.newest_first(corpus, matching)[:limit] == expected

    def test_s10_1_tie_order_is_by_lowest_id(self, filled, corpus):
        ties = filled.query([Filter(since=200, until=200)])
        assert [e.id for e in ties] == sorted(corpus[n].id for n in ("a2", "b1", "c1"))

    def test_s10_1_filters_are_ored_without_duplicates(self, filled, corpus):
        got = filled.query([Filter(tags={"t": ["x"]}), Filter(authors=[public_key(c.BOB)])])
        assert c.names_of(corpus, got) == c.newest_first(corpus, ["a1", "b1", "b2"])

    def test_s10_1_limit_applies_per_filter(self, filled, corpus):
        got = filled.query(
            [
                Filter(authors=[public_key(c.ALICE)], limit=1),
                Filter(authors=[public_key(c.CAROL)], limit=1),
            ]
        )
        assert c.names_of(corpus, got) == c.newest_first(corpus, ["a2", "c1"])

    def test_s10_1_limit_cap_clamps_missing_and_large_limits(self, filled):
        assert len(filled.query([Filter()], limit_cap=3)) == 3
        assert len(filled.query([Filter(limit=100)], limit_cap=2)) == 2
        assert len(filled.query([Filter(limit=1)], limit_cap=2)) == 1

    def test_query_json_returns_stored_text(self, filled, corpus):
        texts = filled.query_json([Filter(ids=[corpus["b2"].id])])
        assert texts == [corpus["b2"].to_json_text()]
        assert [json.loads(t) for t in texts] == [corpus["b2"].to_json()]

    def test_query_json_of_nothing_runnable_is_empty(self, filled):
        assert filled.query_json([]) == []
        assert filled.query_json([Filter(limit=0), Filter(ids=[])]) == []

    def test_get_contains_and_count(self, filled, corpus):
        assert filled.get(corpus["c2"].id) == corpus["c2"]
        assert filled.contains(corpus["c2"].id)
        assert filled.get("00" * 32) is None and not filled.contains("00" * 32)
        assert filled.count() == len(corpus)

    def test_text_survives_storage_exactly(self, store):
        event = sign_event(
            c.ALICE, 1, [["t", "nul\x00in tag"], ["d", "\x00"]], 'nul \x00 é ☃ \u2028 "q"'
        )
        store.save(event)
        got = store.get(event.id)
        assert got == event
        Event.from_json(got.to_json())  # still verifies: nothing was re-encoded
        assert store.query([Filter(tags={"t": ["nul\x00in tag"]})]) == [event]
        # a NUL in an addressable event's d is part of its replacement key
        old = sign_event(c.ALICE, 30617, [["d", "a\x00b"]], "", created_at=1)
        new = sign_event(c.ALICE, 30617, [["d", "a\x00b"]], "", created_at=2)
        other = sign_event(c.ALICE, 30617, [["d", "a"]], "", created_at=1)
        assert [store.save(e) for e in (old, new, other)] == [SaveOutcome.SAVED] * 3
        assert store.query([Filter(kinds=[30617], tags={"d": ["a\x00b"]})]) == [new]

    def test_the_store_is_an_event_store(self, store):
        assert isinstance(store, EventStore)
        assert isinstance(store.location, str) and store.location


class RuleContract:
    """Storage rules: replaceable/addressable latest-only with lowest-id ties (S11.2),
    ephemeral kinds, NIP-09 deletions."""

    @pytest.mark.parametrize(
        "kind, d_tags", [(0, []), (3, []), (10002, []), (30617, [["d", "repo"]])]
    )
    def test_s11_2_only_the_latest_version_is_kept(self, store, kind, d_tags):
        old = sign_event(c.ALICE, kind, [*d_tags, ["t", "old"]], "old", created_at=10)
        new = sign_event(c.ALICE, kind, [*d_tags, ["t", "new"]], "new", created_at=20)
        assert store.save(old) is SaveOutcome.SAVED
        assert store.save(new) is SaveOutcome.SAVED
        assert _all(store) == [new]
        assert store.save(old) is SaveOutcome.REPLACED_NEWER_EXISTS
        assert _all(store) == [new]
        # the replaced version's tag rows went with it
        assert store.query([Filter(tags={"t": ["old"]})]) == []

    @pytest.mark.parametrize("kind, d_tags", [(0, []), (30618, [["d", "repo"]])])
    @pytest.mark.parametrize("order", ["high-first", "low-first"])
    def test_s11_2_equal_created_at_lowest_id_wins_in_any_arrival_order(
        self, store, kind, d_tags, order
    ):
        one = sign_event(c.ALICE, kind, d_tags, "one", created_at=10)
        two = sign_event(c.ALICE, kind, d_tags, "two", created_at=10)
        low, high = sorted([one, two], key=lambda e: e.id)
        arrivals = [high, low] if order == "high-first" else [low, high]
        outcomes = [store.save(e) for e in arrivals]
        assert _all(store) == [low]
        second = SaveOutcome.SAVED if order == "high-first" else SaveOutcome.REPLACED_NEWER_EXISTS
        assert outcomes == [SaveOutcome.SAVED, second]

    def test_s11_2_addressable_versions_are_per_kind_author_and_d(self, store):
        events = [
            sign_event(c.ALICE, 30617, [["d", "a"]], "", created_at=1),
            sign_event(c.ALICE, 30617, [["d", "b"]], "", created_at=1),
            sign_event(c.ALICE, 30618, [["d", "a"]], "", created_at=1),
            sign_event(c.BOB, 30617, [["d", "a"]], "", created_at=1),
            sign_event(c.ALICE, 30617, [], "no d tag means d=''", created_at=1),
        ]
        assert all(store.save(e) is SaveOutcome.SAVED for e in events)
        assert len(_all(store)) == len(events)
        replacement = sign_event(
            c.ALICE, 30617, [["d", ""]], "empty d replaces missing d", created_at=2
        )
        assert store.save(replacement) is SaveOutcome.SAVED
        assert events[-1] not in _all(store) and replacement in _all(store)

    def test_regular_events_are_all_kept_and_duplicates_reported(self, store):
        a = sign_event(c.ALICE, 1618, [], "a", created_at=1)
        b = sign_event(c.ALICE, 1618, [], "b", created_at=1)
        assert [store.save(a), store.save(b), store.save(a)] == [
            SaveOutcome.SAVED,
            SaveOutcome.SAVED,
            SaveOutcome.DUPLICATE,
        ]
        assert SaveOutcome.DUPLICATE.to_result() == Result(
            True, "duplicate: already have this event"
        )

    def test_ephemeral_events_are_not_stored(self, store):
        event = sign_event(c.ALICE, 20001, [], "gone")
        assert store.save(event) is SaveOutcome.EPHEMERAL
        assert SaveOutcome.EPHEMERAL.to_result() == Result(True, "")
        assert not store.contains(event.id)

    def test_nip09_deletes_same_author_targets_only(self, store):
        mine = sign_event(c.ALICE, 1, [], "mine", created_at=10)
        theirs = sign_event(c.BOB, 1, [], "theirs", created_at=10)
        store.save(mine)
        store.save(theirs)
        deletion = c.deletion(c.ALICE, e=[mine.id, theirs.id])
        assert store.save(deletion) is SaveOutcome.SAVED
        assert set(_all(store)) == {theirs, deletion}  # the deletion itself keeps being served
        assert store.save(mine) is SaveOutcome.DELETED_TARGET
        assert SaveOutcome.DELETED_TARGET.to_result() == Result(
            False, "invalid: accepted deletion request for this event"
        )
        assert store.save(theirs) is SaveOutcome.DUPLICATE

    def test_nip09_deletion_before_the_target_arrives(self, store):
        target = sign_event(c.ALICE, 1, [], "late", created_at=10)
        store.save(c.deletion(c.ALICE, e=[target.id]))
        assert store.save(target) is SaveOutcome.DELETED_TARGET
        assert not store.contains(target.id)

    def test_nip09_address_deletes_versions_up_to_its_created_at(self, store):
        alice, bob = public_key(c.ALICE), public_key(c.BOB)
        old = sign_event(c.ALICE, 30617, [["d", "repo"]], "", created_at=100)
        other_d = sign_event(c.ALICE, 30617, [["d", "keep"]], "", created_at=100)
        bobs = sign_event(c.BOB, 30617, [["d", "repo"]], "", created_at=100)
        for event in (old, other_d, bobs):
            store.save(event)
        deletion = c.deletion(
            c.ALICE, a=[f"30617:{alice}:repo", f"30617:{bob}:repo"], created_at=150
        )
        store.save(deletion)
        assert set(_all(store)) == {other_d, bobs, deletion}
        older = sign_event(c.ALICE, 30617, [["d", "repo"]], "older", created_at=150)
        newer = sign_event(c.ALICE, 30617, [["d", "repo"]], "newer", created_at=151)
        assert store.save(older) is SaveOutcome.DELETED_TARGET
        assert store.save(newer) is SaveOutcome.SAVED
        # a later deletion covering less does not shrink what is deleted
        store.save(c.deletion(c.ALICE, a=[f"30617:{alice}:repo"], created_at=120))
        again = sign_event(c.ALICE, 30617, [["d", "repo"]], "x", created_at=140)
        assert store.save(again) is SaveOutcome.DELETED_TARGET

    def test_nip09_address_of_replaceable_kind(self, store):
        profile = sign_event(c.ALICE, 0, [], "{}", created_at=5)
        store.save(profile)
        store.save(c.deletion(c.ALICE, a=[f"0:{public_key(c.ALICE)}:"], created_at=6))
        assert not store.contains(profile.id)

    def test_nip09_deleting_a_deletion_has_no_effect(self, store):
        target = sign_event(c.ALICE, 1, [], "t", created_at=1)
        store.save(target)
        first = c.deletion(c.ALICE, e=[target.id], created_at=2)
        store.save(first)
        second = c.deletion(c.ALICE, e=[first.id], created_at=3)
        assert store.save(second) is SaveOutcome.SAVED
        assert store.contains(first.id)
        assert store.save(target) is SaveOutcome.DELETED_TARGET

    def test_nip09_a_deletion_targeted_before_it_arrives_is_still_stored(self, store):
        later = c.deletion(c.ALICE, e=["cd" * 32], created_at=5)
        store.save(c.deletion(c.ALICE, e=[later.id], created_at=6))
        assert store.save(later) is SaveOutcome.SAVED

    def test_a_failed_save_leaves_the_store_as_it_was(self, store, failing_tag_value):
        """Replacing is one transaction: if writing the new version's tag rows fails after the
        old version was deleted, the old version is still there (bad input never corrupts
        stored data). The failure is the database's own (a trigger or constraint)."""
        old = sign_event(c.ALICE, 30617, [["d", "repo"], ["t", "v1"]], "", created_at=1)
        store.save(old)
        new = sign_event(c.ALICE, 30617, [["d", "repo"], ["t", "v2"]], "", created_at=2)
        with failing_tag_value(store, "v2"), pytest.raises(Exception, match="disk.on.fire"):
            store.save(new)
        assert _all(store) == [old]
        assert store.query([Filter(tags={"t": ["v1"]})]) == [old]
        assert store.save(new) is SaveOutcome.SAVED  # and the store is usable afterwards


class ConcurrencyContract:
    """Greenlets of one relay call the store at once; the rules hold whatever the timing."""

    def test_concurrent_greenlets_share_one_store(self, store):
        events = [c.fake_event(n, kinds=(1, 7)) for n in range(400)]

        def work(chunk: list[Event]) -> None:
            for event in chunk:
                assert store.save(event) is SaveOutcome.SAVED
                assert store.contains(event.id)
                store.query([Filter(authors=[event.pubkey], limit=5)])

        Pool(10).map(work, [events[i::10] for i in range(10)])
        assert store.count() == len(events)

    def test_s11_2_racing_versions_of_one_address_leave_the_winner(self, store):
        versions = [
            sign_event(c.ALICE, 30618, [["d", "repo"]], f"v{n}", created_at=100 + n % 7)
            for n in range(24)
        ]
        winner = min(versions, key=lambda e: (-e.created_at, e.id))
        jobs = [gevent.spawn(store.save, event) for event in versions]
        gevent.joinall(jobs, timeout=60, raise_error=True)
        assert {job.value for job in jobs} <= {SaveOutcome.SAVED, SaveOutcome.REPLACED_NEWER_EXISTS}
        assert _all(store) == [winner]
        assert store.query([Filter(tags={"d": ["repo"]})]) == [winner]

    def test_nip09_a_deletion_racing_its_target_always_wins(self, store):
        targets = [sign_event(c.ALICE, 1, [], f"t{n}", created_at=10) for n in range(12)]
        deletions = [c.deletion(c.ALICE, e=[t.id], created_at=20) for t in targets]
        pairs = [
            (t, d) if n % 2 else (d, t)
            for n, (t, d) in enumerate(zip(targets, deletions, strict=False))
        ]
        jobs = [gevent.spawn(store.save, event) for pair in pairs for event in pair]
        gevent.joinall(jobs, timeout=60, raise_error=True)
        assert not any(store.contains(t.id) for t in targets)
        assert all(store.save(t) is SaveOutcome.DELETED_TARGET for t in targets)
        assert store.count() == len(deletions)


def _property_test() -> Callable[..., None]:
    """A fresh copy of the property test per engine class: Hypothesis keys its example
    database and health checks on the function, and refuses one function run by two classes."""

    # One store per test, emptied by the engine's clear_store before each example.
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(corpus=c.event_lists, flts=c.filter_lists)
    def test_s10_1_query_equals_nip01_definition(self, store, clear_store, corpus, flts):
        cap = 10
        clear_store(store)
        for event in corpus:
            store.save(event)
        got = [e.id for e in store.query(flts, limit_cap=cap)]
        union = {i for flt in flts for i in c.nip01_expected(corpus, flt, cap)}
        by_id = {e.id: e for e in corpus}
        assert got == sorted(union, key=lambda i: (-by_id[i].created_at, i))
        for flt in flts:  # live fan-out agrees with the same definition
            assert [flt.matches(e) for e in corpus] == [c.admitted(flt, e) for e in corpus]

    return test_s10_1_query_equals_nip01_definition


class PropertyContract:
    """For any events and any filter, the query equals the NIP-01 definition, spelled out
    independently of both the SQL and ``Filter.matches`` (tests/store/corpus.py)."""

    test_s10_1_query_equals_nip01_definition = _property_test()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.test_s10_1_query_equals_nip01_definition = _property_test()


class ReferenceContract:
    """The referenced-ids index (S15.1): what accepted events name, bounded, oldest out first."""

    @pytest.fixture()
    def store(self, new_store: NewStore) -> Iterator[EventStore]:
        with new_store() as store:
            yield store

    def test_s15_1_a_named_target_is_found_with_its_referrer(self, store):
        note, address = "ab" * 32, f"30617:{'cd' * 32}:my-repo"
        assert store.referrer_of([note, address]) is None
        store.add_references("ef" * 32, [note, address, note])
        assert store.referrer_of([note]) == "ef" * 32
        assert store.referrer_of(["00" * 32, address]) == "ef" * 32
        assert store.referrer_of([]) is None and store.referrer_of(["00" * 32]) is None
        store.add_references("ff" * 32, [])  # nothing to record is no error

    def test_s15_1_the_bound_drops_the_oldest_reference_first(self, store):
        store.max_references = 3
        store.add_references("01" * 32, ["t1", "t2"])
        store.add_references("02" * 32, ["t3"])
        store.add_references("03" * 32, ["t1"])  # referenced again: now the newest
        store.add_references("04" * 32, ["t4"])
        assert [store.referrer_of([t]) for t in ("t1", "t2", "t3", "t4")] == [
            "03" * 32,
            None,
            "02" * 32,
            "04" * 32,
        ]
        store.add_references("05" * 32, ["t5", "t6", "t7"])
        assert [
            store.referrer_of([t]) is not None for t in ("t1", "t3", "t4", "t5", "t6", "t7")
        ] == [
            False,
            False,
            False,
            True,
            True,
            True,
        ]

    def test_s15_1_addresses_survive_exactly(self, store):
        odd = "30617:" + "ab" * 32 + ":nul\x00 é ☃"
        store.add_references("01" * 32, [odd])
        assert store.referrer_of([odd]) == "01" * 32
        assert store.referrer_of([odd[:-1]]) is None

    def test_s15_1_concurrent_recorders_keep_the_bound(self, store):
        store.max_references = 50
        pool = Pool(8)
        for i in range(40):
            pool.spawn(store.add_references, f"{i:064x}", [f"target-{i}-{j}" for j in range(5)])
        pool.join(raise_error=True)
        found = [store.referrer_of([f"target-{i}-{j}"]) for i in range(40) for j in range(5)]
        assert sum(1 for f in found if f) == 50


def _held_row(event: Event, expires_at: float = 2000.0, source: str = "direct") -> HeldRow:
    return HeldRow(
        event.id, event.kind, event.d or "repo", source, expires_at, event.to_json_text()
    )


def _placeholder(n: int, expires_at: float = 2000.0, expired: bool = False) -> PlaceholderRow:
    return PlaceholderRow(
        f"{n:064x}", public_key(c.ALICE), "repo", f"{n:040x}", expires_at, expired
    )


class HeldContract:
    """Purgatory's rows (S9.1): written before ``OK true``, dropped in the transaction that
    stores the released event, read back in arrival order at start, deadlines moved by the
    downtime once (docs/durability.rst D1-D3)."""

    def test_s9_1_held_rows_come_back_in_arrival_order(self, store):
        events = [
            sign_event(c.ALICE, 30618, [["d", f"r{n}"]], "", created_at=9 - n) for n in range(5)
        ]
        rows = [_held_row(e, 1000.0 + n) for n, e in enumerate(events)]
        store.write_held(HeldChanges(hold=tuple(rows[:3])))
        store.write_held(
            HeldChanges(
                hold=tuple(rows[3:]),
                placeholders=(_placeholder(2), _placeholder(1, expired=True)),
                expire=(ExpiredRow("ab" * 32, 123.5),),
            )
        )
        snapshot = store.load_held()
        assert snapshot == HeldSnapshot(
            events=tuple(rows),
            placeholders=(_placeholder(2), _placeholder(1, expired=True)),
            expired=(ExpiredRow("ab" * 32, 123.5),),
        )
        assert Event.from_json(json.loads(snapshot.events[0].json)) == events[0]
        assert store.count() == 0  # held is not stored: nothing is served

    def test_s9_1_holding_a_held_id_again_keeps_the_first_row(self, store):
        event = sign_event(c.ALICE, 1618, [], "pr")
        store.write_held(HeldChanges(hold=(_held_row(event, 1000.0),)))
        store.write_held(HeldChanges(hold=(_held_row(event, 5000.0, "sync"),)))
        assert store.load_held().events == (_held_row(event, 1000.0),)

    def test_s9_1_release_stores_the_event_and_drops_its_row_in_one_transaction(
        self, store, failing_tag_value
    ):
        event = sign_event(c.ALICE, 30618, [["d", "repo"], ["t", "v1"]], "")
        store.write_held(HeldChanges(hold=(_held_row(event),)))
        with failing_tag_value(store, "v1"), pytest.raises(Exception, match="disk.on.fire"):
            store.save(event, held=HeldChanges(unhold=(event.id,)))
        assert store.load_held().events == (_held_row(event),)  # still held: nothing happened
        assert not store.contains(event.id)
        assert store.save(event, held=HeldChanges(unhold=(event.id,))) is SaveOutcome.SAVED
        assert store.contains(event.id) and store.load_held().events == ()

    def test_s9_1_save_all_stores_every_event_and_drops_their_rows_or_does_nothing(
        self, store, failing_tag_value
    ):
        """A state and the announcement it promotes are released in one transaction (S8.2,
        S9.1): a failure on the last event keeps the first one unstored and held too; the
        outcomes come back in the order of the events."""
        announcement = sign_event(c.ALICE, 30617, [["d", "repo"]], "", created_at=1)
        state = sign_event(c.ALICE, 30618, [["d", "repo"], ["t", "v1"]], "", created_at=1)
        rows = (_held_row(announcement), _held_row(state))
        store.write_held(HeldChanges(hold=rows))
        both = HeldChanges(unhold=(announcement.id, state.id))
        with failing_tag_value(store, "v1"), pytest.raises(Exception, match="disk.on.fire"):
            store.save_all([announcement, state], held=both)
        assert store.load_held().events == rows  # nothing happened
        assert not store.contains(announcement.id) and not store.contains(state.id)
        store.save(state)  # stored meanwhile (e.g. by a peer): a duplicate in the next release
        outcomes = store.save_all([announcement, state], held=both)
        assert outcomes == [SaveOutcome.SAVED, SaveOutcome.DUPLICATE]
        assert store.contains(announcement.id) and store.load_held().events == ()

    def test_s9_1_a_release_leaves_purgatory_whatever_the_save_outcome(self, store):
        old = sign_event(c.ALICE, 30618, [["d", "repo"]], "old", created_at=1)
        new = sign_event(c.ALICE, 30618, [["d", "repo"]], "new", created_at=2)
        store.save(new)
        store.write_held(HeldChanges(hold=(_held_row(old),)))
        outcome = store.save(old, held=HeldChanges(unhold=(old.id,)))
        assert outcome is SaveOutcome.REPLACED_NEWER_EXISTS
        assert store.load_held().events == ()

    def test_s9_1_a_replacement_is_one_unit_of_work(self, store):
        v1 = sign_event(c.ALICE, 30617, [["d", "repo"]], "", created_at=1)
        v2 = sign_event(c.ALICE, 30617, [["d", "repo"]], "", created_at=2)
        store.write_held(HeldChanges(hold=(_held_row(v1),), placeholders=(_placeholder(7),)))
        pr = sign_event(c.BOB, 1618, [], "takes over the placeholder")
        store.write_held(
            HeldChanges(
                unhold=(v1.id,),
                drop_placeholders=(_placeholder(7).key,),
                hold=(_held_row(v2), _held_row(pr)),
                extend=((v2.id, 9000.0),),
            )
        )
        snapshot = store.load_held()
        assert snapshot.events == (_held_row(v2, 9000.0), _held_row(pr))
        assert snapshot.placeholders == ()

    def test_s1_3_placeholders_are_per_repository_and_written_whole(self, store):
        one = _placeholder(1)
        other_repo = PlaceholderRow(one.event_id, one.owner, "other", one.commit, 2000.0)
        store.write_held(HeldChanges(placeholders=(one, other_repo)))
        moved = PlaceholderRow(one.event_id, one.owner, "repo", "cd" * 20, 2000.0, True)
        store.write_held(HeldChanges(placeholders=(moved,)))
        assert store.load_held().placeholders == (moved, other_repo)

    def test_s1_4_expired_ids_are_remembered_then_forgotten(self, store):
        store.write_held(
            HeldChanges(expire=(ExpiredRow("01" * 32, 100.0), ExpiredRow("02" * 32, 200.0)))
        )
        store.write_held(HeldChanges(unexpire=("02" * 32,), expire=(ExpiredRow("03" * 32, 300.0),)))
        store.write_held(HeldChanges(forget_expired_before=150.0))
        assert store.load_held().expired == (ExpiredRow("03" * 32, 300.0),)

    def test_s9_1_resume_credits_the_downtime_once(self, store):
        event = sign_event(c.ALICE, 1618, [], "pr")
        store.write_held(
            HeldChanges(
                hold=(_held_row(event, 1000.0),),
                placeholders=(_placeholder(1, 1000.0), _placeholder(2, 500.0, expired=True)),
            )
        )
        assert store.resume("node-a", 100.0) == 0.0  # no heartbeat yet: nothing to credit
        store.heartbeat("node-a", 140.0)
        assert store.resume("node-b", 200.0) == 60.0  # nobody beat between 140 and 200
        assert store.resume("node-a", 201.5) == 1.5  # node-b's start counts as a beat
        snapshot = store.load_held()
        assert snapshot.events == (_held_row(event, 1061.5),)
        assert snapshot.placeholders == (
            _placeholder(1, 1061.5),
            _placeholder(2, 500.0, expired=True),  # nothing left to credit
        )
        assert store.resume("node-c", 150.0) == 0.0  # a clock that went back credits nothing

    def test_s9_1_concurrent_writers_lose_nothing(self, store):
        events = [sign_event(c.ALICE, 1618, [], f"pr {n}") for n in range(60)]

        def hold_then_release_some(numbered: tuple[int, Event]) -> None:
            n, event = numbered
            store.write_held(HeldChanges(hold=(_held_row(event),)))
            if n % 10 == 0:
                store.save(event, held=HeldChanges(unhold=(event.id,)))

        Pool(10).map(hold_then_release_some, list(enumerate(events)))
        held_ids = {r.event_id for r in store.load_held().events}
        assert held_ids == {e.id for n, e in enumerate(events) if n % 10}
        assert store.count() == 6


class RecordContract:
    """NIP-77's read (S17.3): ``(created_at, id)`` of what a REQ would serve, never held rows."""

    def test_s17_3_records_match_the_filter_newest_first(self, store):
        corpus = c.six_events()
        for event in corpus.values():
            store.save(event)
        for flt in (Filter(), Filter(tags={"t": ["x"]}), Filter(authors=[public_key(c.BOB)])):
            expected = [(e.created_at, e.id) for e in store.query([flt], limit_cap=1000)]
            assert store.records(flt, 1000) == expected
        assert len(store.records(Filter(), 2)) == 2  # the caller's bound
        assert len(store.records(Filter(limit=1), 1000)) == 1  # the filter's own limit
        assert store.records(Filter(ids=[]), 1000) == []

    def test_s17_3_records_never_include_held_events(self, store):
        stored = sign_event(c.ALICE, 30617, [["d", "repo"]], "", created_at=10)
        held = sign_event(c.ALICE, 30618, [["d", "repo"]], "", created_at=11)
        store.save(stored)
        store.write_held(HeldChanges(hold=(_held_row(held),)))
        assert store.records(Filter(), 100) == [(10, stored.id)]
        assert store.records(Filter(ids=[held.id]), 100) == []


class EventStoreContract(
    RecordContract,
    QueryContract,
    RuleContract,
    ConcurrencyContract,
    PropertyContract,
    ReferenceContract,
    HeldContract,
):
    """The whole contract; a test class per engine subclasses this and adds its fixtures."""
