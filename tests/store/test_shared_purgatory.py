"""One truth (S19.2): two purgatory caches on one PostgreSQL database, as two nodes have them.

Each node keeps purgatory in memory; :meth:`PurgatoryStore.refresh` reloads it when the
held tables' version (migration 7) moved, and costs one read when it did not.
"""

from __future__ import annotations

from grasp.nostr.event import public_key
from grasp.purgatory import AddOutcome, PurgatoryStore
from grasp.store import open_store
from grasp.store.held import HeldChanges
from tests.purgatory.helpers import ALICE, BOB, announcement, oid, state


def _node(url: str) -> PurgatoryStore:
    return PurgatoryStore(db=open_store(url, pool_size=2), shared=True)


def test_s19_2_held_version_moves_with_every_change_and_only_then(postgres_database):
    with open_store(postgres_database, pool_size=2) as store:
        version, snapshot = store.load_held_since(0)
        assert snapshot is not None and snapshot.events == ()
        assert store.load_held_since(version) == (version, None)  # unchanged: no rows read
        held = _node(postgres_database)
        held.add_announcement(announcement(ALICE, "repo"))
        moved, snapshot = store.load_held_since(version)
        assert moved > version and snapshot is not None and len(snapshot.events) == 1
        store.write_held(HeldChanges())  # an empty change writes nothing
        assert store.load_held_since(moved) == (moved, None)
        assert held.db is not None
        held.db.close()


def test_s19_2_a_node_sees_what_another_node_holds_and_releases(postgres_database):
    one, two = _node(postgres_database), _node(postgres_database)
    try:
        a = announcement(ALICE, "repo")
        assert one.add_announcement(a) is AddOutcome.ADDED
        assert two.announcement(a.owner, "repo") is None  # the cache alone does not know ...
        assert two.refresh() is True  # ... until it reloads
        assert two.announcement(a.owner, "repo") == a
        assert two.refresh() is False  # nothing changed since
        s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
        assert two.add_state(s) is AddOutcome.ADDED
        assert two.add_state(s) is AddOutcome.DUPLICATE
        one.refresh()
        assert [x.event.id for x in one.states_for("repo")] == [s.event.id]
        assert one.add_state(s) is AddOutcome.DUPLICATE  # judged against node 2's row
        assert one.remove(s.event.id)
        two.refresh()
        assert two.states_for("repo") == [] and two.announcement(a.owner, "repo") == a
        assert two.announcement(public_key(BOB), "repo") is None
    finally:
        for node in (one, two):
            assert node.db is not None
            node.db.close()


def test_s19_2_a_store_that_is_not_shared_never_reloads(postgres_database):
    lonely = PurgatoryStore(db=open_store(postgres_database, pool_size=1))
    other = _node(postgres_database)
    try:
        other.add_announcement(announcement(ALICE, "repo"))
        assert lonely.refresh() is False and lonely.announcement(public_key(ALICE), "repo") is None
    finally:
        for node in (lonely, other):
            assert node.db is not None
            node.db.close()


def test_s19_2_release_passes_of_one_identifier_take_turns_across_nodes(postgres_database):
    """The per-identifier repository lock: a second node's pass waits for the first one's;
    another identifier's pass does not."""
    import gevent
    import gevent.event

    one, two = (
        open_store(postgres_database, pool_size=2),
        open_store(postgres_database, pool_size=2),
    )
    order: list[str] = []
    inside = gevent.event.Event()
    proceed = gevent.event.Event()

    def first() -> None:
        with one.repository_lock("repo"):
            order.append("one in")
            inside.set()
            proceed.wait(10)
            order.append("one out")

    def second(identifier: str) -> None:
        with two.repository_lock(identifier):
            order.append(f"two in {identifier}")

    try:
        holder = gevent.spawn(first)
        assert inside.wait(10)
        gevent.spawn(second, "other").join(10)  # another identifier: no waiting
        waiter = gevent.spawn(second, "repo")
        gevent.sleep(0.2)  # give the waiter every chance to (wrongly) get in
        assert order == ["one in", "two in other"]
        proceed.set()
        gevent.joinall([holder, waiter], timeout=10, raise_error=True)
        assert order == ["one in", "two in other", "one out", "two in repo"]
    finally:
        one.close(), two.close()
