"""Storage rules: replaceable/addressable latest-only with lowest-id ties (S11.2), ephemeral, NIP-09."""

import pytest

from grasp.nostr.event import public_key, sign_event
from grasp.nostr.filters import Filter
from grasp.nostr.results import Result
from grasp.store.sqlite import EventStore, SaveOutcome

ALICE, BOB = "a1" * 32, "b2" * 32


@pytest.fixture()
def store(tmp_path):
    with EventStore(tmp_path / "events.sqlite3") as store:
        yield store


def _all(store):
    return store.query([Filter()])


@pytest.mark.parametrize("kind, d_tags", [(0, []), (3, []), (10002, []), (30617, [["d", "repo"]])])
def test_s11_2_only_the_latest_version_is_kept(store, kind, d_tags):
    old = sign_event(ALICE, kind, [*d_tags, ["t", "old"]], "old", created_at=10)
    new = sign_event(ALICE, kind, [*d_tags, ["t", "new"]], "new", created_at=20)
    assert store.save(old) is SaveOutcome.SAVED
    assert store.save(new) is SaveOutcome.SAVED
    assert _all(store) == [new]
    assert store.save(old) is SaveOutcome.REPLACED_NEWER_EXISTS
    assert _all(store) == [new]
    # the replaced version's tag rows went with it
    assert store.query([Filter(tags={"t": ["old"]})]) == []


@pytest.mark.parametrize("kind, d_tags", [(0, []), (30618, [["d", "repo"]])])
def test_s11_2_equal_created_at_lowest_id_wins_in_any_arrival_order(tmp_path, kind, d_tags):
    one = sign_event(ALICE, kind, d_tags, "one", created_at=10)
    two = sign_event(ALICE, kind, d_tags, "two", created_at=10)
    low, high = sorted([one, two], key=lambda e: e.id)
    for name, order in (("high-first", [high, low]), ("low-first", [low, high])):
        with EventStore(tmp_path / f"{name}.sqlite3") as store:
            outcomes = [store.save(e) for e in order]
            assert _all(store) == [low]
            expected = (
                [SaveOutcome.SAVED, SaveOutcome.SAVED]
                if order[0] is high
                else [SaveOutcome.SAVED, SaveOutcome.REPLACED_NEWER_EXISTS]
            )
            assert outcomes == expected


def test_addressable_versions_are_per_kind_author_and_d(store):
    events = [
        sign_event(ALICE, 30617, [["d", "a"]], "", created_at=1),
        sign_event(ALICE, 30617, [["d", "b"]], "", created_at=1),
        sign_event(ALICE, 30618, [["d", "a"]], "", created_at=1),
        sign_event(BOB, 30617, [["d", "a"]], "", created_at=1),
        sign_event(ALICE, 30617, [], "no d tag means d=''", created_at=1),
    ]
    assert all(store.save(e) is SaveOutcome.SAVED for e in events)
    assert len(_all(store)) == len(events)
    replacement = sign_event(ALICE, 30617, [["d", ""]], "empty d replaces missing d", created_at=2)
    assert store.save(replacement) is SaveOutcome.SAVED
    assert events[-1] not in _all(store) and replacement in _all(store)


def test_regular_events_are_all_kept_and_duplicates_reported(store):
    a = sign_event(ALICE, 1618, [], "a", created_at=1)
    b = sign_event(ALICE, 1618, [], "b", created_at=1)
    assert [store.save(a), store.save(b), store.save(a)] == [
        SaveOutcome.SAVED, SaveOutcome.SAVED, SaveOutcome.DUPLICATE,
    ]
    assert SaveOutcome.DUPLICATE.to_result() == Result(True, "duplicate: already have this event")


def test_ephemeral_events_are_not_stored(store):
    event = sign_event(ALICE, 20001, [], "gone")
    assert store.save(event) is SaveOutcome.EPHEMERAL
    assert SaveOutcome.EPHEMERAL.to_result() == Result(True, "")
    assert not store.contains(event.id)


def _deletion(secret, e=(), a=(), created_at=100):
    return sign_event(secret, 5, [*[["e", i] for i in e], *[["a", x] for x in a], ["k", "1"]], "", created_at=created_at)


def test_nip09_deletes_same_author_targets_only(store):
    mine = sign_event(ALICE, 1, [], "mine", created_at=10)
    theirs = sign_event(BOB, 1, [], "theirs", created_at=10)
    store.save(mine)
    store.save(theirs)
    deletion = _deletion(ALICE, e=[mine.id, theirs.id])
    assert store.save(deletion) is SaveOutcome.SAVED
    assert set(_all(store)) == {theirs, deletion}  # the deletion itself keeps being served
    assert store.save(mine) is SaveOutcome.DELETED_TARGET
    assert SaveOutcome.DELETED_TARGET.to_result() == Result(
        False, "invalid: accepted deletion request for this event"
    )
    assert store.save(theirs) is SaveOutcome.DUPLICATE


def test_nip09_deletion_before_the_target_arrives(store):
    target = sign_event(ALICE, 1, [], "late", created_at=10)
    store.save(_deletion(ALICE, e=[target.id]))
    assert store.save(target) is SaveOutcome.DELETED_TARGET
    assert not store.contains(target.id)


def test_nip09_address_deletes_versions_up_to_its_created_at(store):
    alice = public_key(ALICE)
    old = sign_event(ALICE, 30617, [["d", "repo"]], "", created_at=100)
    other_d = sign_event(ALICE, 30617, [["d", "keep"]], "", created_at=100)
    bobs = sign_event(BOB, 30617, [["d", "repo"]], "", created_at=100)
    for event in (old, other_d, bobs):
        store.save(event)
    deletion = _deletion(
        ALICE, a=[f"30617:{alice}:repo", f"30617:{public_key(BOB)}:repo"], created_at=150
    )
    store.save(deletion)
    assert set(_all(store)) == {other_d, bobs, deletion}
    older = sign_event(ALICE, 30617, [["d", "repo"]], "older", created_at=150)
    newer = sign_event(ALICE, 30617, [["d", "repo"]], "newer", created_at=151)
    assert store.save(older) is SaveOutcome.DELETED_TARGET
    assert store.save(newer) is SaveOutcome.SAVED
    # a later deletion covering less does not shrink what is deleted
    store.save(_deletion(ALICE, a=[f"30617:{alice}:repo"], created_at=120))
    assert store.save(sign_event(ALICE, 30617, [["d", "repo"]], "x", created_at=140)) is SaveOutcome.DELETED_TARGET


def test_nip09_address_of_replaceable_kind(store):
    profile = sign_event(ALICE, 0, [], "{}", created_at=5)
    store.save(profile)
    store.save(_deletion(ALICE, a=[f"0:{public_key(ALICE)}:"], created_at=6))
    assert not store.contains(profile.id)


def test_nip09_deleting_a_deletion_has_no_effect(store):
    target = sign_event(ALICE, 1, [], "t", created_at=1)
    store.save(target)
    first = _deletion(ALICE, e=[target.id], created_at=2)
    store.save(first)
    second = _deletion(ALICE, e=[first.id], created_at=3)
    assert store.save(second) is SaveOutcome.SAVED
    assert store.contains(first.id)
    assert store.save(target) is SaveOutcome.DELETED_TARGET


def test_nip09_a_deletion_targeted_before_it_arrives_is_still_stored(store):
    later = _deletion(ALICE, e=["cd" * 32], created_at=5)
    store.save(_deletion(ALICE, e=[later.id], created_at=6))
    assert store.save(later) is SaveOutcome.SAVED


def test_a_failed_save_leaves_the_store_as_it_was(store, monkeypatch):
    """Replacing is one transaction: if the insert fails after the old version was deleted,
    the old version is still there (bad input never corrupts stored data)."""
    old = sign_event(ALICE, 30617, [["d", "repo"], ["t", "v1"]], "", created_at=1)
    store.save(old)
    new = sign_event(ALICE, 30617, [["d", "repo"], ["t", "v2"]], "", created_at=2)

    def failing_insert(db, event, d):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(EventStore, "_insert", staticmethod(failing_insert))
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.save(new)
    monkeypatch.undo()
    assert _all(store) == [old]
    assert store.query([Filter(tags={"t": ["v1"]})]) == [old]
    assert store.save(new) is SaveOutcome.SAVED  # and the store is usable afterwards
