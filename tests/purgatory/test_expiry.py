"""Expiry with an injected clock (S1.4): 30 minutes held, ids remembered for 7 days."""

from grasp.purgatory import EXPIRED_MEMORY_SECS
from tests.purgatory.helpers import ALICE, BOB, announcement, make_store, oid, pr, state


def test_s1_4_entries_expire_after_their_lifetime():
    store, now, _ = make_store()
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    p = pr(BOB, ["repo"], oid(2))
    a = announcement(ALICE, "repo")
    store.add_state(s)
    store.add_pr(p)
    store.add_announcement(a)
    store.add_placeholder("ee" * 32, oid(3))
    now.advance(1799.9)
    assert not store.sweep()
    assert store.has_pending_events("repo")
    now.advance(0.1)
    result = store.sweep()
    assert result.states == (s,) and result.prs == (p,) and result.announcements == (a,)
    assert result.placeholders == ("ee" * 32,)
    assert result.total == 4 and set(result.expired_ids) == {s.event.id, p.event_id, a.event.id}
    assert not store.has_pending_events("repo") and store.pending_identifiers() == []
    assert store.placeholder_commit("ee" * 32) is None
    for event_id in result.expired_ids:
        assert store.is_expired(event_id)
    assert not store.is_expired("ee" * 32)  # a placeholder is not an event


def test_s1_4_each_entry_has_its_own_deadline():
    store, now, _ = make_store()
    first = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    store.add_state(first)
    now.advance(600)
    second = state(BOB, "repo", {"refs/heads/main": oid(2)})
    store.add_state(second)
    now.advance(1200)
    assert store.sweep().states == (first,)
    assert store.states_for("repo") == [second]
    now.advance(600)
    assert store.sweep().states == (second,)


def test_duplicate_add_does_not_extend_the_lifetime():
    store, now, _ = make_store()
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    store.add_state(s)
    now.advance(1000)
    store.add_state(s)
    now.advance(800)
    assert store.sweep().states == (s,)


def test_expiry_is_configurable():
    store, now, _ = make_store(expiry_secs=60)
    store.add_pr(pr(BOB, ["repo"], oid(1)))
    now.advance(60)
    assert len(store.sweep().prs) == 1


def test_s1_4_expired_ids_are_remembered_seven_days_then_forgotten():
    store, now, _ = make_store()
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    store.add_state(s)
    now.advance(1800)
    store.sweep()
    now.advance(EXPIRED_MEMORY_SECS - 1)
    assert store.is_expired(s.event.id)
    store.sweep()
    assert store.is_expired(s.event.id)
    now.advance(1)
    assert not store.is_expired(s.event.id)
    store.sweep()
    assert s.event.id not in store._expired  # the memory is pruned, not just hidden


def test_resubmitting_an_expired_event_holds_it_again():
    """A user may resubmit (S1.4); while held again it is no longer reported as expired."""
    store, now, _ = make_store()
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    store.add_state(s)
    now.advance(1800)
    store.sweep()
    assert store.add_state(s).held
    assert not store.is_expired(s.event.id)


def test_extending_an_announcement_postpones_its_expiry():
    store, now, _ = make_store()
    a = announcement(ALICE, "repo")
    store.add_announcement(a)
    now.advance(1000)
    assert store.extend_announcement(a.owner, "repo")
    now.advance(1000)
    assert not store.sweep()
    now.advance(800)
    assert store.sweep().announcements == (a,)
    assert not store.extend_announcement(a.owner, "repo")


def test_direct_expiries_are_logged_louder_than_synced_ones(caplog):
    """upstream f148b3a: a user's event expiring means an expected push never came."""
    from grasp.purgatory import Source

    store, now, _ = make_store()
    direct = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    synced = state(BOB, "repo", {"refs/heads/main": oid(2)})
    store.add_state(direct, Source.DIRECT)
    store.add_state(synced, Source.SYNC)
    now.advance(1800)
    with caplog.at_level("DEBUG", logger="grasp.purgatory"):
        store.sweep()
    levels = {
        r.getMessage().split()[2]: r.levelname
        for r in caplog.records
        if r.getMessage().startswith("expired")
    }
    assert levels == {direct.event.id: "INFO", synced.event.id: "DEBUG"}
