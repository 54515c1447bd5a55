"""One truth (S19.2): two purgatory caches on one PostgreSQL database, as two nodes have them.

Each node keeps purgatory in memory; :meth:`PurgatoryStore.refresh` reloads it when the
held tables' version (migration 7) moved, and costs one read when it did not.
"""

from __future__ import annotations

from grasp.nostr.event import public_key
from grasp.purgatory import AddOutcome, PurgatoryStore
from grasp.store import open_store
from grasp.store.held import HeldChanges, HeldDelta, HeldSnapshot
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
        moved, delta = store.load_held_since(version)
        assert moved > version and isinstance(delta, HeldDelta)  # only what changed
        assert len(delta.event_ids) == 1 and len(delta.rows.events) == 1
        assert held.remove(delta.event_ids[0])
        gone, removal = store.load_held_since(moved)
        assert gone > moved and isinstance(removal, HeldDelta)
        assert removal.event_ids == delta.event_ids and removal.rows.events == ()
        _, everything = store.load_held_since(0)  # a new cache gets everything
        assert isinstance(everything, HeldSnapshot) and everything.events == ()
        moved = gone
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


def _view(p: PurgatoryStore) -> dict:
    """Everything a decision can read from a cache, in the order it reads it."""
    identifiers = sorted({*p.pending_identifiers(), "repo", "other"})
    with p._lock:
        placeholders = {k: (v.commit, v.expires_at) for k, v in p._placeholders.items()}
        doomed = sorted(p._doomed)
        announcements = [
            (k, h.announcement.event.id, round(h.expires_at, 3))
            for k, h in p._announcements.items()
        ]
        expired = sorted(p._expired)
    return {
        "counts": p.counts(),
        "states": {i: [s.event.id for s in p.states_for(i)] for i in identifiers},
        "prs": {i: [x.event_id for x in p.prs_for(i)] for i in identifiers},
        "announcements": announcements,
        "placeholders": placeholders,
        "doomed": doomed,
        "expired": expired,
    }


def test_s19_2_applying_changes_gives_what_a_full_load_gives(postgres_database):
    """Property: after any mix of holds, replacements, extensions, placeholders, removals and
    sweeps on node 1, node 2's refreshed cache reads exactly like a cache loaded afresh —
    including arrival order, which an in-place replacement must keep."""
    import random

    from tests.purgatory.helpers import CAROL, FakeClock, pr

    now, wall = FakeClock(1000.0), FakeClock(1_800_000_000.0)

    def node(shared: bool = True) -> PurgatoryStore:
        return PurgatoryStore(
            now=now,
            wall=wall,
            expiry_secs=50.0,
            db=open_store(postgres_database, pool_size=2),
            shared=shared,
        )

    one, two = node(), node()
    rng = random.Random(17)
    owners = [ALICE, BOB, CAROL]
    try:
        two.refresh()
        for step in range(60):
            op = rng.choice(["ann", "ann", "state", "pr", "ph", "remove", "extend", "sweep"])
            owner, d = rng.choice(owners), rng.choice(["repo", "other"])
            if op == "ann":
                one.add_announcement(announcement(owner, d, created_at=100 + step))
            elif op == "state":
                one.add_state(
                    state(owner, d, {"refs/heads/main": oid(step)}, created_at=100 + step),
                    extend_owners=[public_key(o) for o in owners],
                )
            elif op == "pr":
                one.add_pr(pr(owner, [d], oid(1000 + step), created_at=100 + step))
            elif op == "ph":
                one.add_placeholder(f"{step:064x}", oid(step), public_key(owner), d)
            elif op == "remove":
                held = [s.event.id for i in ("repo", "other") for s in one.states_for(i)]
                if held:
                    one.remove(rng.choice(held))
            elif op == "extend":
                one.extend_announcement(public_key(owner), d)
            else:
                now.advance(20), wall.advance(20)
                one.sweep()
            two.refresh()
            fresh = node(shared=False)
            fresh.load()
            assert _view(two) == _view(fresh), f"step {step}: {op}"
            assert fresh.db is not None
            fresh.db.close()
    finally:
        for n in (one, two):
            assert n.db is not None
            n.db.close()
