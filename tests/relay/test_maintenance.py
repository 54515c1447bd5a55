"""The purgatory sweeper (S1.4): expiry, and the empty repositories expiry leaves behind."""

from grasp.git import set_nostr_ref
from grasp.relay.maintenance import PurgatorySweeper
from tests.support.gitrepo import RepoBuilder, for_each_ref, has_object
from tests.support.nip34 import Key

D = "repo"


def test_sweep_expires_entries_and_removes_only_unused_empty_repositories(world):
    never_pushed, pushed, replaced = Key(), Key(), Key()
    world.announce(never_pushed, D, held=True)
    world.announce(pushed, D, held=True)
    RepoBuilder(world.repo(pushed, D)).commit(branch="main")  # data arrived, not yet released
    world.announce(replaced, D, held=True)
    world.store.save(replaced.announcement(D, created_at=1_700_000_999))  # now accepted
    state = world.hold_state(never_pushed.state(D, {"refs/heads/main": "a" * 40}))
    sweeper = PurgatorySweeper(world.purgatory, world.index)

    assert not sweeper.sweep()  # nothing is old enough yet
    world.clock.advance(world.purgatory.expiry_secs)
    result = sweeper.sweep()

    assert {a.owner for a in result.announcements} == {
        never_pushed.pubkey,
        pushed.pubkey,
        replaced.pubkey,
    }
    assert [s.event.id for s in result.states] == [state.event.id]
    assert world.purgatory.is_expired(state.event.id)
    assert not world.index.repo_path(never_pushed.pubkey, D).exists()  # empty: removed
    assert world.index.repo_path(pushed.pubkey, D).is_dir()  # has refs: kept
    assert world.index.repo_path(replaced.pubkey, D).is_dir()  # a stored announcement claims it


def test_s14_3_the_sweep_asks_the_releaser_to_clean_up_expired_placeholders(world):
    """Refs are the Releaser's (S8.1): the sweeper marks and asks, the release pass deletes."""
    from tests.admission.test_write_policy import RecordingSync

    owner = Key()
    world.announce(owner, D)
    repo = RepoBuilder(world.repo(owner, D))
    commit = repo.commit("squatting")
    set_nostr_ref(repo.path, "ab" * 32, commit)
    world.purgatory.add_placeholder("ab" * 32, commit, owner.pubkey, D)
    sync = RecordingSync(world)
    sweeper = PurgatorySweeper(world.purgatory, world.index, sync=sync)
    sweeper.sweep()
    assert sync.arrived == []  # nothing expired yet
    world.clock.advance(world.purgatory.expiry_secs)
    assert sweeper.sweep().placeholders == ("ab" * 32,)
    assert sync.arrived == [D]
    assert f"refs/nostr/{'ab' * 32}" in for_each_ref(repo.path)  # not the sweeper's to delete
    world.workflow.process(D)  # the Releaser's pass
    assert for_each_ref(repo.path) == {}
    assert not has_object(repo.path, commit)
    assert sweeper.request_cleanup() == []  # done: nothing is asked again


def test_s9_1_the_heartbeat_beats_and_beats_once_more_at_a_stop(world):
    from grasp.relay.heartbeat import Heartbeat

    times = iter([100.0, 105.0])
    heartbeat = Heartbeat(world.store, "node-1", interval=3600, wall=lambda: next(times))
    heartbeat.start()
    heartbeat.beat()
    heartbeat.stop()  # the final beat: downtime starts now
    assert world.store.resume("node-2", 112.0) == 7.0
