"""purgatory-state.json across a graceful restart (S9.1)."""

import json

import pytest

from grasp.purgatory import STATE_FILENAME, PurgatoryFileError, PurgatoryStore, Source
from tests.purgatory.helpers import (
    ALICE,
    BOB,
    CAROL,
    FakeClock,
    announcement,
    make_store,
    oid,
    pr,
    state,
)


def _restarted(wall_after: float) -> tuple[PurgatoryStore, FakeClock]:
    """A fresh process: a new monotonic clock, the wall clock moved on by the downtime."""
    now = FakeClock(50.0)
    return PurgatoryStore(now=now, wall=FakeClock(wall_after)), now


def test_s9_1_round_trip_subtracts_downtime(tmp_path):
    store, now, wall = make_store()
    path = tmp_path / STATE_FILENAME
    old_state = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    store.add_state(old_state)
    now.advance(1000)  # old_state has 800 s left
    new_state = state(BOB, "repo", {"refs/heads/main": oid(2)}, created_at=200)
    held_pr = pr(CAROL, ["pr-only"], oid(3), clone=("https://c/x.git", "https://a/x.git"))
    store.add_state(new_state, Source.SYNC)
    store.add_pr(held_pr)
    store.add_placeholder("ee" * 32, oid(4))
    store.add_announcement(announcement(ALICE, "repo"))
    store.save(path)
    assert not path.with_name(STATE_FILENAME + ".tmp").exists()

    restored, now2 = _restarted(wall() + 300)  # 300 s of downtime
    identifiers = restored.restore(path)
    assert not path.exists()
    assert identifiers == ["pr-only", "repo"]  # PR identifiers too (S9.1 deviation)
    assert restored.states_for("repo") == [old_state, new_state]
    assert restored.prs_for("pr-only") == [held_pr]
    assert restored.pr_clone_urls("pr-only") == ["https://c/x.git", "https://a/x.git"]
    assert restored.placeholder_commit("ee" * 32) == oid(4)
    assert restored.announcement(announcement(ALICE, "repo").owner, "repo") is not None
    assert restored._states["repo"][new_state.event.id].source is Source.SYNC

    now2.advance(800 - 300 - 0.01)
    assert not restored.sweep()
    now2.advance(0.01)
    assert restored.sweep().states == (old_state,)  # 800 s left minus 300 s downtime
    now2.advance(1000)
    assert restored.sweep().states == (new_state,)  # the rest had the full 1800 s - 300 s


def test_s9_1_entries_that_expired_during_downtime_are_dropped_and_remembered(tmp_path):
    store, now, wall = make_store()
    path = tmp_path / STATE_FILENAME
    doomed = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    store.add_state(doomed)
    now.advance(1700)
    survivor = pr(BOB, ["repo"], oid(2))
    store.add_pr(survivor)
    store.save(path)
    restored, _ = _restarted(wall() + 200)
    assert restored.restore(path) == ["repo"]
    assert restored.states_for("repo") == []
    assert restored.is_expired(doomed.event.id)
    assert restored.prs_for("repo") == [survivor]


def test_s9_1_expired_ids_keep_their_age(tmp_path):
    store, now, wall = make_store()
    path = tmp_path / STATE_FILENAME
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    store.add_state(s)
    now.advance(1800)
    store.sweep()
    now.advance(86400)
    store.save(path)
    restored, now2 = _restarted(wall() + 86400)  # two of the seven days are used up
    assert restored.restore(path) == []
    assert restored.is_expired(s.event.id)
    now2.advance(5 * 86400 - 1)
    assert restored.is_expired(s.event.id)
    now2.advance(1)
    assert not restored.is_expired(s.event.id)


def test_saved_at_in_the_future_counts_as_no_downtime(tmp_path):
    store, _, wall = make_store()
    path = tmp_path / STATE_FILENAME
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    store.add_state(s)
    store.save(path)
    restored, now2 = _restarted(wall() - 5000)  # the wall clock went backwards
    restored.restore(path)
    now2.advance(1799)
    assert not restored.sweep()


def test_missing_file_restores_nothing(tmp_path):
    store, _, _ = make_store()
    assert store.restore(tmp_path / STATE_FILENAME) == []


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "corrupt purgatory state file"),
        ("[]", "not a JSON object"),
        ('{"version": 2, "saved_at": 1}', "unsupported purgatory state version 2"),
        ('{"saved_at": 1}', "unsupported purgatory state version None"),
        ('{"version": 1}', "bad 'saved_at'"),
        ('{"version": 1, "saved_at": 1, "states": {}}', "'states' is not a list"),
        ('{"version": 1, "saved_at": 1, "expired": []}', "'expired' is not a dict"),
    ],
)
def test_bad_files_raise_a_clear_error_and_stay(tmp_path, content, message):
    path = tmp_path / STATE_FILENAME
    path.write_text(content)
    store, _, _ = make_store()
    with pytest.raises(PurgatoryFileError, match=message):
        store.restore(path)
    assert path.read_text() == content  # left for inspection
    assert store.pending_identifiers() == []


def test_undecodable_file_is_a_clear_error(tmp_path):
    path = tmp_path / STATE_FILENAME
    path.write_bytes(b"\xff\xfe\x00garbage")
    store, _, _ = make_store()
    with pytest.raises(PurgatoryFileError, match="cannot read"):
        store.restore(path)


def test_tampered_entries_are_skipped_the_rest_restored(tmp_path):
    store, _, wall = make_store()
    path = tmp_path / STATE_FILENAME
    good = state(ALICE, "good", {"refs/heads/main": oid(1)})
    bad = state(BOB, "bad", {"refs/heads/main": oid(2)})
    store.add_state(good)
    store.add_state(bad)
    store.add_placeholder("ee" * 32, oid(3))
    store.save(path)
    document = json.loads(path.read_text())
    for entry in document["states"]:
        if entry["event"]["id"] == bad.event.id:
            entry["event"]["content"] = "tampered"  # the id no longer matches
    document["prs"][0]["commit"] = "not-an-oid"
    document["prs"].append({"event": None})  # shape error
    document["states"] += [5, "x", [], {"event": {}, "remaining_secs": 10}]
    path.write_text(json.dumps(document))
    restored, _ = _restarted(wall())
    assert restored.restore(path) == ["good"]
    assert restored.states_for("good") == [good]
    assert restored.counts()["placeholder"] == 0


def test_save_replaces_an_existing_file_and_restore_merges_without_duplicates(tmp_path):
    store, _, wall = make_store()
    path = tmp_path / STATE_FILENAME
    path.write_text("stale")
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    store.add_state(s)
    store.save(path)
    assert json.loads(path.read_text())["version"] == 1
    store.restore(path)  # restoring into a store that already holds the entry
    assert store.states_for("repo") == [s]
