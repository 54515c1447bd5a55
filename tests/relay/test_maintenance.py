"""The purgatory sweeper (S1.4): expiry, and the empty repositories expiry leaves behind."""

from grasp.relay.maintenance import PurgatorySweeper
from tests.support.gitrepo import RepoBuilder
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
