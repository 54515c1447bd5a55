"""The release workflow over real bare repositories and SQLite (S8)."""

import logging

from grasp.nostr import kinds
from grasp.nostr.filters import Filter
from tests.support.gitrepo import RepoBuilder, assert_fsck_clean, for_each_ref, symbolic_head
from tests.support.nip34 import Key

D = "project"


def _served(world, event_id):
    return bool(world.store.query([Filter(ids={event_id})]))


def test_state_is_released_when_its_objects_are_present(world):
    """S8.2: refs and HEAD aligned exactly, saved, notified, removed; a second pass is a no-op."""
    owner = Key()
    world.announce(owner, D)
    repo = RepoBuilder(world.repo(owner, D))
    main, dev = repo.chain(2)
    tag = repo.tag("v1", main)
    repo.set_ref("refs/heads/stale", main)  # not in the state: must be deleted
    state = world.hold_state(
        owner.state(
            D,
            {
                "refs/heads/main": main,
                "refs/heads/dev": dev,
                "refs/tags/v1": tag,
                "refs/tags/v1^{}": main,
            },
            head="refs/heads/dev",
        )
    )
    result = world.workflow.process(D)
    assert (result.states_released, result.repos_synced, result.errors) == (1, 1, ())
    assert for_each_ref(repo.path) == {
        "refs/heads/main": main,
        "refs/heads/dev": dev,
        "refs/tags/v1": tag,
    }
    assert symbolic_head(repo.path) == "refs/heads/dev"
    assert world.notified_ids == [state.event.id] and _served(world, state.event.id)
    assert not world.purgatory.has_pending_events(D)
    again = world.workflow.process(D)
    assert not again.released_any and world.notified_ids == [state.event.id]
    assert_fsck_clean(repo.path)


def test_state_waits_while_any_of_its_objects_is_missing(world):
    owner = Key()
    world.announce(owner, D)
    repo = RepoBuilder(world.repo(owner, D))
    present = repo.commit()
    absent = "a" * 40
    world.hold_state(owner.state(D, {"refs/heads/main": present, "refs/heads/other": absent}))
    assert not world.workflow.process(D).released_any
    assert world.purgatory.has_pending_events(D)
    assert for_each_ref(repo.path) == {}


def test_authorisation_is_decided_at_release_time(world, caplog):
    """S8.2: a state whose author became a maintainer while it waited is released; one whose
    author never is gets removed and logged."""
    owner, newcomer, stranger = Key(), Key(), Key()
    world.announce(owner, D, created_at=1_700_000_000)
    repo = RepoBuilder(world.repo(owner, D))
    commit = repo.commit()
    by_newcomer = world.hold_state(
        newcomer.state(D, {"refs/heads/main": commit}, created_at=1_700_000_300)
    )
    by_stranger = world.hold_state(
        stranger.state(D, {"refs/heads/main": commit}, created_at=1_700_000_200)
    )
    world.store.save(owner.announcement(D, maintainers=[newcomer.pubkey], created_at=1_700_000_050))
    with caplog.at_level(logging.WARNING, logger="grasp.release"):
        result = world.workflow.process(D)
    assert result.states_released == 1
    assert world.notified_ids == [by_newcomer.event.id]
    assert not world.purgatory.contains(by_stranger.event.id)
    assert not _served(world, by_stranger.event.id)
    assert any(
        by_stranger.event.id in r.getMessage() and "no maintainer" in r.getMessage()
        for r in caplog.records
    )


def test_older_state_arriving_later_does_not_roll_refs_back(world):
    """Latest authorised state per owner repo wins (created_at); a late older one is saved
    (another author) but leaves the refs alone."""
    owner, maintainer = Key(), Key()
    world.announce(owner, D, maintainers=[maintainer.pubkey])
    repo = RepoBuilder(world.repo(owner, D))
    old, new = repo.chain(2)
    world.hold_state(owner.state(D, {"refs/heads/main": new}, created_at=1_700_000_500))
    world.workflow.process(D)
    late = world.hold_state(maintainer.state(D, {"refs/heads/main": old}, created_at=1_700_000_400))
    result = world.workflow.process(D)
    assert (result.states_released, result.repos_synced) == (1, 0)
    assert for_each_ref(repo.path) == {"refs/heads/main": new}
    assert _served(world, late.event.id)


def test_same_second_tie_goes_to_the_lowest_event_id(world):
    owner, maintainer = Key(), Key()
    world.announce(owner, D, maintainers=[maintainer.pubkey])
    repo = RepoBuilder(world.repo(owner, D))
    a, b = repo.commit(), repo.commit()
    first = owner.state(D, {"refs/heads/main": a}, created_at=1_700_000_600)
    second = maintainer.state(D, {"refs/heads/main": b}, created_at=1_700_000_600)
    world.hold_state(first)
    world.hold_state(second)
    world.workflow.process(D)
    winner = min((first, a), (second, b), key=lambda pair: pair[0].id)
    assert for_each_ref(repo.path) == {"refs/heads/main": winner[1]}


def test_same_author_newer_state_supersedes_a_late_older_one(world):
    owner = Key()
    world.announce(owner, D)
    repo = RepoBuilder(world.repo(owner, D))
    old, new = repo.chain(2)
    world.hold_state(owner.state(D, {"refs/heads/main": new}, created_at=1_700_000_700))
    world.workflow.process(D)
    stale = world.hold_state(owner.state(D, {"refs/heads/main": old}, created_at=1_700_000_650))
    world.workflow.process(D)
    assert not world.purgatory.contains(stale.event.id)
    assert not _served(world, stale.event.id)  # the addressable slot keeps the newer one
    assert for_each_ref(repo.path) == {"refs/heads/main": new}


def test_release_copies_into_every_owner_and_promotes_their_held_announcements(world):
    """S8.2: a maintainer's state aligns each owner repo where it is the latest; objects are
    copied from the repo that has them; the other owner's held announcement is promoted."""
    alice, bob, maintainer = Key(), Key(), Key()
    world.announce(alice, D, maintainers=[maintainer.pubkey])
    held = world.announce(bob, D, held=True, maintainers=[maintainer.pubkey])
    source = RepoBuilder(world.repo(alice, D))
    commits = source.chain(3)
    state = world.hold_state(maintainer.state(D, {"refs/heads/main": commits[-1]}))
    result = world.workflow.process(D)
    assert (result.states_released, result.repos_synced) == (1, 2)
    for owner in (alice, bob):
        assert for_each_ref(world.repo(owner, D)) == {"refs/heads/main": commits[-1]}
        assert_fsck_clean(world.repo(owner, D))
    assert world.purgatory.announcement(bob.pubkey, D) is None
    assert _served(world, held.event.id)
    # the announcement is broadcast before the state it authorises
    assert world.notified_ids == [held.event.id, state.event.id]


def test_pr_and_pr_update_get_nostr_refs_in_every_owner_repo(world):
    """S8.3: refs/nostr/<event-id> -> c in every owner repository, then saved and notified."""
    alice, bob, contributor = Key(), Key(), Key()
    world.announce(alice, D)
    world.announce(bob, D)
    tip = RepoBuilder(world.repo(bob, D)).chain(2)[-1]
    pr = world.hold_pr(contributor.pr(alice.pubkey, D, tip))
    update_tip = RepoBuilder(world.repo(bob, D)).commit(parents=[tip])
    update = world.hold_pr(
        contributor.pr(alice.pubkey, D, update_tip, kind=kinds.PULL_REQUEST_UPDATE)
    )
    missing = world.hold_pr(contributor.pr(alice.pubkey, D, "b" * 40, created_at=1_700_000_900))
    result = world.workflow.process(D)
    assert result.prs_released == 2
    for owner in (alice, bob):
        refs = for_each_ref(world.repo(owner, D))
        assert refs[f"refs/nostr/{pr.event_id}"] == tip
        assert refs[f"refs/nostr/{update.event_id}"] == update_tip
        assert_fsck_clean(world.repo(owner, D))
    assert world.notified_ids == [pr.event_id, update.event_id]
    assert world.purgatory.prs_for(D) == [missing]


def test_an_empty_state_is_released_and_clears_the_refs(world):
    owner = Key()
    world.announce(owner, D)
    repo = RepoBuilder(world.repo(owner, D))
    repo.set_ref("refs/heads/main", repo.commit())
    world.hold_state(owner.state(D, {}, head=None))
    assert world.workflow.process(D).states_released == 1
    assert for_each_ref(repo.path) == {}


def test_each_release_is_reported_with_how_long_it_was_held(world):
    """The hook metrics and the status page use: one call per event leaving purgatory."""
    owner = Key()
    world.announce(owner, D, held=True)
    commit = RepoBuilder(world.repo(owner, D)).commit()
    state = world.hold_state(owner.state(D, {"refs/heads/main": commit}))
    reported = []
    world.workflow.on_release = lambda event, identifier, held_for: reported.append(
        (event.kind, identifier, held_for)
    )
    world.clock.advance(42)
    world.workflow.process(D)
    assert reported == [(kinds.REPO_ANNOUNCEMENT, D, 42.0), (kinds.REPO_STATE, D, 42.0)]
    assert world.purgatory.held_for(state.event.id) is None


def _fail_saves_of(world, kind):
    """Make the real SQLite store refuse events of ``kind`` (a failing disk, at the leaf)."""
    world.store._db.execute(
        "CREATE TEMP TRIGGER refuse BEFORE INSERT ON events "
        f"WHEN NEW.kind = {kind} BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    )


def test_a_state_and_the_announcement_it_promotes_are_stored_together_or_not_at_all(world):
    """S8.2 + S9.1: the promoted announcement and the state go in one transaction, so a store
    failure on the state keeps both held (nothing stored, nothing broadcast), and the next
    pass releases both, the announcement first."""
    owner = Key()
    held = world.announce(owner, D, held=True)
    commit = RepoBuilder(world.repo(owner, D)).commit()
    state = world.hold_state(owner.state(D, {"refs/heads/main": commit}))
    _fail_saves_of(world, kinds.REPO_STATE)
    result = world.workflow.process(D)
    assert result.states_released == 0 and len(result.errors) == 1
    assert world.purgatory.announcement(owner.pubkey, D) is not None
    assert world.purgatory.states_for(D) == [state]
    assert not _served(world, held.event.id) and not _served(world, state.event.id)
    assert world.notified_ids == []
    world.store._db.execute("DROP TRIGGER refuse")
    assert world.workflow.process(D).states_released == 1
    assert world.notified_ids == [held.event.id, state.event.id]
    assert _served(world, held.event.id) and _served(world, state.event.id)
    assert world.purgatory.announcement(owner.pubkey, D) is None
    assert not world.purgatory.has_pending_events(D)


def test_a_release_with_a_promoted_announcement_commits_once(world):
    """One commit for the state and the announcements it promotes (P1: one per event
    before), counted in the statements the store's own SQLite connection runs."""
    owner = Key()
    world.announce(owner, D, held=True)
    commit = RepoBuilder(world.repo(owner, D)).commit()
    world.hold_state(owner.state(D, {"refs/heads/main": commit}))
    commits = []
    world.store._db.set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    try:
        assert world.workflow.process(D).states_released == 1
    finally:
        world.store._db.set_trace_callback(None)
    assert len(commits) == 1


def test_a_state_whose_only_repository_cannot_be_aligned_stays_held(world):
    """S8.2: another writer holds the ref's lock, so no repository matches the state. It stays
    held (not served with refs the repository lacks), the pass reports the error — so the sync
    is retried (S5.3's deviation) — and the pass after the writer is done releases it. It used
    to be served with the repository left behind, and never aligned again."""
    owner = Key()
    world.announce(owner, D)
    repo = RepoBuilder(world.repo(owner, D))
    commit = repo.commit()
    locks = [repo.path / "packed-refs.lock", repo.path / "refs" / "heads" / "main.lock"]
    for lock in locks:
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_bytes(b"")
    state = world.hold_state(owner.state(D, {"refs/heads/main": commit}))
    result = world.workflow.process(D)
    assert (result.states_released, result.repos_synced, len(result.errors)) == (0, 0, 1)
    assert "locked" in result.errors[0]
    assert world.purgatory.states_for(D) == [state] and not _served(world, state.event.id)
    for lock in locks:
        lock.unlink()
    assert world.workflow.process(D).states_released == 1
    assert for_each_ref(repo.path)["refs/heads/main"] == commit
    assert _served(world, state.event.id)


def _lock_main(path):
    """Another writer's ref locks on ``refs/heads/main`` (loose and packed)."""
    locks = [path / "packed-refs.lock", path / "refs" / "heads" / "main.lock"]
    for lock in locks:
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_bytes(b"")
    return locks


def test_an_owner_repository_a_release_left_behind_is_aligned_by_a_later_pass(world):
    """S8.2 / D9: bob's ref is locked by another writer while alice's aligns, so the state is
    served for alice and bob's repository is owed. Each later pass tries bob again (reported as
    an error, so the sync retries); once the lock is gone bob matches the state. It used to keep
    its old refs until bob's next state or push."""
    alice, bob, maintainer = Key(), Key(), Key()
    world.announce(alice, D, maintainers=[maintainer.pubkey])
    world.announce(bob, D, maintainers=[maintainer.pubkey])
    commits = RepoBuilder(world.repo(alice, D)).chain(2)
    locks = _lock_main(world.repo(bob, D))
    state = world.hold_state(maintainer.state(D, {"refs/heads/main": commits[-1]}))
    first = world.workflow.process(D)
    assert (first.states_released, first.repos_synced, len(first.errors)) == (1, 1, 1)
    assert _served(world, state.event.id) and not world.purgatory.has_pending_events(D)
    assert world.workflow.owes(D)
    again = world.workflow.process(D)
    assert (again.repos_synced, len(again.errors)) == (0, 1) and "locked" in again.errors[0]
    for lock in locks:
        lock.unlink()
    last = world.workflow.process(D)
    assert (last.states_released, last.repos_synced, last.errors) == (0, 1, ())
    assert for_each_ref(world.repo(bob, D)) == {"refs/heads/main": commits[-1]}
    assert_fsck_clean(world.repo(bob, D))
    assert not world.workflow.owes(D) and world.notified_ids == [state.event.id]


def test_an_owed_repository_is_not_rolled_back_to_a_superseded_state(world):
    """The owed retry aligns only while the state is still the owner's latest: a newer state
    released meanwhile wins, and the old one is forgotten (S8.2's "latest state")."""
    alice, bob, maintainer = Key(), Key(), Key()
    world.announce(alice, D, maintainers=[maintainer.pubkey])
    world.announce(bob, D, maintainers=[maintainer.pubkey])
    old, new = RepoBuilder(world.repo(alice, D)).chain(2)
    locks = _lock_main(world.repo(bob, D))
    world.hold_state(maintainer.state(D, {"refs/heads/main": old}, created_at=1_700_000_000))
    assert len(world.workflow.process(D).errors) == 1 and world.workflow.owes(D)
    for lock in locks:
        lock.unlink()
    world.hold_state(maintainer.state(D, {"refs/heads/main": new}, created_at=1_700_000_100))
    result = world.workflow.process(D)
    assert (result.states_released, result.repos_synced, result.errors) == (1, 2, ())
    assert not world.workflow.owes(D)
    for owner in (alice, bob):
        assert for_each_ref(world.repo(owner, D)) == {"refs/heads/main": new}
