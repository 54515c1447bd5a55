"""Purgatory written through to the event database (S9.1): every change is committed before
the method returns, a new process rebuilds the same purgatory from the tables, releases and
deletions leave purgatory in the transaction that stores the event, and downtime does not
count against a lifetime (docs/durability.rst D1-D4). A real SQLite file throughout; the same
tables on PostgreSQL are covered by the store contract (tests/store/contract.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from grasp.nostr.address import DeletionRequest
from grasp.nostr.event import public_key, sign_event
from grasp.purgatory import STATE_FILENAME, AddOutcome, PurgatoryStore, Source
from grasp.store.base import SaveOutcome
from grasp.store.sqlite import SqliteEventStore
from tests.purgatory.helpers import ALICE, BOB, CAROL, FakeClock, announcement, oid, pr, state

NODE = "test-node"


class Process:
    """One relay process's view: a store on the file, monotonic and wall clocks, purgatory."""

    def __init__(self, path: Path, wall: float, expiry_secs: float = 1800.0) -> None:
        self.db = SqliteEventStore(path)
        self.now, self.wall = FakeClock(100.0), FakeClock(wall)
        self.purgatory = PurgatoryStore(
            now=self.now, wall=self.wall, expiry_secs=expiry_secs, db=self.db
        )

    def start(self) -> list[str]:
        self.db.resume(NODE, self.wall())
        return self.purgatory.load()

    def advance(self, seconds: float) -> None:
        """Time passes while running; the heartbeat greenlet beats (D3)."""
        self.now.advance(seconds)
        self.wall.advance(seconds)
        self.db.heartbeat(NODE, self.wall())

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def path(tmp_path):
    return tmp_path / "events.sqlite3"


def _everything(p: PurgatoryStore):
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    update = pr(BOB, ["repo"], oid(2), kind=1619)
    a = announcement(CAROL, "repo")
    assert p.add_state(s, Source.SYNC) is AddOutcome.ADDED
    assert p.add_pr(update) is AddOutcome.ADDED
    assert p.add_announcement(a) is AddOutcome.ADDED
    assert p.add_placeholder("ee" * 32, oid(3), public_key(ALICE), "repo") is AddOutcome.ADDED
    return s, update, a


def test_s9_1_a_new_process_rebuilds_the_same_purgatory(path):
    first = Process(path, wall=1_800_000_000.0)
    first.start()
    s, update, a = _everything(first.purgatory)
    counts = first.purgatory.counts()
    # no save, no close: what a SIGKILL leaves is what was committed
    second = Process(path, wall=1_800_000_000.0)
    assert second.start() == ["repo"]
    p = second.purgatory
    assert p.counts() == counts == {"30617": 1, "30618": 1, "1618": 0, "1619": 1, "placeholder": 1}
    assert p.states_for("repo") == [s] and p.prs_for("repo") == [update]
    assert p.announcement(a.owner, "repo") == a
    assert p.placeholder_commit("ee" * 32) == oid(3)
    assert p.placeholders_in(public_key(ALICE), "repo") == 1
    assert p._states["repo"][s.event.id].source is Source.SYNC
    first.close()
    second.close()


def test_s9_1_a_failed_write_raises_and_changes_nothing(path):
    process = Process(path, wall=1_800_000_000.0)
    process.start()
    with process.db._lock:
        process.db._db.execute(
            "CREATE TEMP TRIGGER disk_on_fire BEFORE INSERT ON held_events "
            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    with pytest.raises(sqlite3.DatabaseError, match="disk on fire"):
        process.purgatory.add_state(s)
    assert not process.purgatory.contains(s.event.id)  # no OK may be sent for it
    assert process.db.load_held().events == ()
    process.close()


def test_s9_1_release_stores_and_unholds_in_one_transaction(path):
    process = Process(path, wall=1_800_000_000.0)
    process.start()
    s, update, _ = _everything(process.purgatory)
    outcome = process.purgatory.save_and_unhold(process.db, s.event, [s.event.id])
    assert outcome is SaveOutcome.SAVED
    assert not process.purgatory.contains(s.event.id) and process.db.contains(s.event.id)
    again = Process(path, wall=1_800_000_000.0)
    again.start()
    assert again.purgatory.states_for("repo") == []
    assert again.purgatory.prs_for("repo") == [update]
    process.close()
    again.close()


def test_s10_4_deletion_and_the_events_it_unholds_are_one_transaction(path):
    process = Process(path, wall=1_800_000_000.0)
    process.start()
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    process.purgatory.add_state(s)
    deletion = sign_event(ALICE, 5, [["e", s.event.id]], "")
    doomed = process.purgatory.deleted_by(DeletionRequest.from_event(deletion))
    assert doomed == [s.event.id]
    process.purgatory.save_and_unhold(process.db, deletion, doomed)
    assert process.db.contains(deletion.id) and process.db.load_held().events == ()
    process.close()


def test_s1_4_expiry_and_its_memory_survive_a_restart(path):
    process = Process(path, wall=1_800_000_000.0, expiry_secs=60)
    process.start()
    s, update, a = _everything(process.purgatory)
    process.advance(60)
    result = process.purgatory.sweep()
    assert result.total == 4 and process.purgatory.cleanup_identifiers() == ["repo"]
    again = Process(path, wall=process.wall(), expiry_secs=60)
    assert again.start() == []
    for event in (s.event, update.event, a.event):
        assert again.purgatory.is_expired(event.id)
    doomed = again.purgatory.expired_placeholders("repo")
    assert [(p.event_id, p.commit) for p in doomed] == [("ee" * 32, oid(3))]
    again.purgatory.forget_placeholders([p.key for p in doomed])
    assert Process(path, wall=process.wall()).db.load_held().placeholders == ()
    process.close()
    again.close()


def test_s9_1_downtime_does_not_count_against_a_lifetime(path):
    """D3: 10 s run, heartbeat, crash, 1000 s down: 1790 s of the 1800 are left."""
    first = Process(path, wall=1_800_000_000.0)
    first.start()
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    first.purgatory.add_state(s)
    first.advance(10)  # ends with a heartbeat
    second = Process(path, wall=first.wall() + 1000)
    second.start()
    second.now.advance(1790 - 0.01)
    assert not second.purgatory.sweep()
    second.now.advance(0.01)
    assert second.purgatory.sweep().states == (s,)
    first.close()
    second.close()


def test_s1_4_an_extension_is_written_through(path):
    process = Process(path, wall=1_800_000_000.0)
    process.start()
    a = announcement(ALICE, "repo")
    process.purgatory.add_announcement(a)
    process.advance(1000)
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    process.purgatory.add_state(s, extend_owners=[a.owner])
    again = Process(path, wall=process.wall())
    again.start()
    again.now.advance(1799)
    assert not again.purgatory.sweep().announcements  # restarted 1000 s in: 1800 s from then
    again.now.advance(1)
    assert again.purgatory.sweep().announcements == (a,)
    process.close()
    again.close()


def test_s14_3_a_signed_pr_wins_over_a_placeholder_of_another_commit(path):
    process = Process(path, wall=1_800_000_000.0)
    process.start()
    owner = public_key(ALICE)
    real = pr(BOB, ["repo"], oid(2))
    process.purgatory.add_placeholder(real.event_id, oid(9), owner, "repo")  # squatted
    process.purgatory.add_placeholder(real.event_id, oid(8), owner, "elsewhere")
    assert process.purgatory.add_pr(real) is AddOutcome.REPLACED
    assert process.purgatory.pr(real.event_id) == real
    lost = process.purgatory.expired_placeholders("repo")
    assert [(p.commit, p.identifier) for p in lost] == [(oid(9), "repo")]  # to be cleaned
    assert process.purgatory.placeholders_in(owner, "elsewhere") == 1  # not the PR's repository
    again = Process(path, wall=process.wall())
    again.start()
    assert [p.commit for p in again.purgatory.expired_placeholders("repo")] == [oid(9)]
    process.close()
    again.close()


def test_s14_3_a_placeholder_with_the_prs_commit_is_simply_taken_over(path):
    process = Process(path, wall=1_800_000_000.0)
    process.start()
    real = pr(BOB, ["repo"], oid(2))
    process.purgatory.add_placeholder(real.event_id, oid(2), public_key(ALICE), "repo")
    assert process.purgatory.add_pr(real) is AddOutcome.REPLACED
    assert process.purgatory.expired_placeholders("repo") == []
    assert process.db.load_held().placeholders == ()
    process.close()


def test_s1_3_pushing_a_placeholder_again_moves_its_commit_not_its_deadline(path):
    process = Process(path, wall=1_800_000_000.0, expiry_secs=100)
    process.start()
    owner = public_key(ALICE)
    process.purgatory.add_placeholder("ee" * 32, oid(1), owner, "repo")
    process.advance(60)
    assert process.purgatory.add_placeholder("ee" * 32, oid(2), owner, "repo") is (
        AddOutcome.REPLACED
    )
    process.advance(40)
    assert process.purgatory.sweep().placeholders == ("ee" * 32,)
    assert [p.commit for p in process.purgatory.expired_placeholders("repo")] == [oid(2)]
    process.close()


def test_s9_1_rows_the_current_rules_refuse_are_dropped_at_load(path):
    process = Process(path, wall=1_800_000_000.0)
    process.start()
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    process.purgatory.add_state(s)
    with process.db._write() as db:
        db.execute('UPDATE held_events SET json = \'{"not": "an event"}\'')
    again = Process(path, wall=process.wall())
    assert again.start() == []
    assert again.db.load_held().events == ()
    process.close()
    again.close()


def test_s9_1_an_old_state_file_is_imported_once_then_deleted(path, tmp_path):
    old = PurgatoryStore(now=FakeClock(5.0), wall=FakeClock(1_800_000_000.0))
    s, update, a = _everything(old)
    file = tmp_path / STATE_FILENAME
    old.save(file)
    process = Process(path, wall=1_800_000_030.0)
    process.start()
    assert process.purgatory.restore(file) == ["repo"]
    assert not file.exists()
    again = Process(path, wall=1_800_000_030.0)
    again.start()
    assert again.purgatory.states_for("repo") == [s]
    assert again.purgatory.prs_for("repo") == [update]
    assert again.purgatory.announcement(a.owner, "repo") == a
    assert again.purgatory.placeholder_commit("ee" * 32) == oid(3)
    old.save(file)  # a crash between commit and unlink: the next start imports it again
    assert again.purgatory.restore(file) == []
    assert again.purgatory.counts() == process.purgatory.counts()
    assert len(again.db.load_held().events) == 3
    process.close()
    again.close()
