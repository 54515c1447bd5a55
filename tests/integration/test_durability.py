"""Durability through the CLI (issue 12, docs/durability.rst): held events survive SIGKILL,
``OK true`` comes only after the commit, and downtime does not count against a lifetime.

Every relay here is a ``grasp-relay`` process started by its console script; git is the real
``git http-backend`` and the ``git`` CLI; events go over websocket (nostr-sdk or
websocket-client). The user delay stays 180 s unless a test shortens it, so before a crash
nothing releases by itself: what is held afterwards was held because it was committed.
"""

from __future__ import annotations

import signal
import sqlite3
import time

import pytest
import websocket

from tests.integration.support import announcement_listing, assert_log_in_order, push
from tests.support.gitrepo import RepoBuilder, for_each_ref
from tests.support.nip34 import Key
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

ID, OTHER = "durable", "durable-other"
EVERY_KIND = {"30617": 2, "30618": 1, "1618": 1, "1619": 1, "placeholder": 1}


def test_s9_1_sigkill_keeps_every_kind_of_held_event_and_requeues_it(cluster, tmp_path):
    """Held states, PRs, PR updates, announcements and a placeholder: SIGKILL, restart on the
    same data directory, all held again and queued again (the restart delay, not 180 s), then
    released as their data arrives: by fetch from G for ID, by push for the placeholder and
    for a state of the announcement that was only held when the relay died."""
    owner, contributor = Key(), Key()
    g = cluster.git_server("G", host="127.0.0.2")
    remote = RepoBuilder.create(g.root / f"{ID}.git")
    main = remote.chain(2, branch="main")[-1]
    pr_tip = remote.commit("contribution", parents=[main], branch="pr")
    update_tip = remote.commit("more", parents=[pr_tip], branch="pr")
    b = cluster.relay("B", fixed_domain=True)
    announcement = announcement_listing(owner, ID, [b.domain], extra_clone=[g.url(f"{ID}.git")])
    other = announcement_listing(owner, OTHER, [b.domain])
    state = owner.state(ID, {"refs/heads/main": main})
    pr = contributor.pr(owner.pubkey, ID, pr_tip)
    update = contributor.pr(owner.pubkey, ID, update_tip, kind=1619)
    b.publish(announcement, other, state, pr, update)
    work = RepoBuilder.create(tmp_path / "work.git")
    placed = work.commit("pushed before its PR event", branch="early")
    early = contributor.pr(owner.pubkey, ID, placed, created_at=1_700_000_300)
    push(work.path, b.clone_url(owner.pubkey, ID), f"early:refs/nostr/{early.id}")
    b.wait_held(**{f"k{kind}": n for kind, n in EVERY_KIND.items()})

    b.kill()
    b.restart()

    assert b.held() == EVERY_KIND  # at once, before any sync could have run
    assert_log_in_order(b, r"restored purgatory", r"re-queueing 1 restored identifiers")
    b.wait_served(announcement, state, pr, update)  # fetched from G at the restart delay
    b.publish(early)  # the placeholder's commit is here: stored at once
    b.wait_served(early)
    assert b.ls_remote(owner.pubkey, ID)[f"refs/nostr/{early.id}"] == placed
    later = work.commit("for the repository that was only held", branch="main")
    state_other = owner.state(OTHER, {"refs/heads/main": later})
    b.publish(state_other)  # accepted: its announcement was restored too
    push(work.path, b.clone_url(owner.pubkey, OTHER), "main:main")
    b.wait_served(other, state_other)
    assert b.held() == {kind: 0 for kind in EVERY_KIND}


@pytest.mark.sqlite_only  # reads events.sqlite3 itself
def test_s9_1_ok_true_only_after_the_row_is_committed(cluster):
    """Each ``OK true "purgatory: ..."`` is read, and at that instant an independent reader of
    the database file already sees the held row: the commit came first."""
    owner = Key()
    b = cluster.relay("B")
    b.publish(announcement_listing(owner, ID, [b.domain]))
    database = sqlite3.connect(f"file:{b.data_dir / 'events.sqlite3'}?mode=ro", uri=True)
    try:
        with b.client() as client:
            for n in range(50):
                state = owner.state(ID, {"refs/heads/main": f"{n + 1:040x}"}, created_at=10**9 + n)
                ok = client.publish(state)
                assert ok[2] is True and ok[3].startswith("purgatory:"), ok
                row = database.execute(
                    "SELECT 1 FROM held_events WHERE event_id = ?", (state.id,)
                ).fetchone()
                assert row is not None, f"OK sent for {state.id} before its row was committed"
    finally:
        database.close()


def test_s9_1_sigkill_between_receiving_and_answering_never_loses_an_ok(cluster):
    """300 states sent without waiting; SIGKILL once 100 OKs arrived, with the rest in flight
    (received, being committed, or answered on the wire). After the restart every event that
    got ``OK true`` is held ("duplicate: in purgatory"); an event without an OK may be either."""
    owner = Key()
    b = cluster.relay("B", "--event-rate-limit", "0")  # 300 events on one connection
    b.publish(announcement_listing(owner, ID, [b.domain]))
    states = [
        owner.state(ID, {"refs/heads/main": f"{n + 1:040x}"}, created_at=10**9 + n)
        for n in range(300)
    ]
    answered: list[str] = []
    with b.client() as client:
        for state in states:
            client.send("EVENT", state.to_json())
        while len(answered) < 100:
            ok = client.expect("OK")
            assert ok[2] is True, ok
            answered.append(ok[1])
        b.process.send_signal(signal.SIGKILL)
        try:
            while True:  # whatever was already on the wire when the process died
                ok = client.expect("OK")
                answered.append(ok[1])
        except (websocket.WebSocketException, OSError):  # closed with the process
            pass
    b.kill()
    b.restart()
    assert len(answered) >= 100
    with b.client() as client:
        by_id = {s.id: s for s in states}
        for event_id in answered:
            ok = client.publish(by_id[event_id])
            assert ok[2:] == [True, "duplicate: in purgatory"], (event_id, ok)
    held = b.held()["30618"]
    assert len(answered) <= held <= len(states)


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_s1_4_downtime_does_not_count_against_the_lifetime(cluster, stop):
    """A 4 s lifetime; 1 s of it used, then the relay is down for 5 s — longer than the whole
    lifetime — by SIGTERM or SIGKILL. After the restart the state is still held, and expires
    about 3 s later: the downtime was credited (within one heartbeat, 5 s, after a crash)."""
    owner = Key()
    b = cluster.relay("B", "--purgatory-expiry-secs", "4", "--maintenance-interval-secs", "0.2")
    b.publish(announcement_listing(owner, ID, [b.domain]))
    state = owner.state(ID, {"refs/heads/main": "a" * 40})
    b.publish(state)
    b.wait_held(k30618=1)
    time.sleep(1.0)  # the part of its lifetime used before the stop (a duration, not a wait)
    if stop == "SIGKILL":
        b.kill()
    else:
        assert b.stop() == 0
    time.sleep(5.0)  # the downtime itself: the scenario, not a wait for a condition
    restarted = time.monotonic()
    b.restart()
    assert b.held()["30618"] == 1
    wait_for(lambda: b.held()["30618"] == 0, timeout=12, message="the state to expire")
    lived = time.monotonic() - restarted
    assert 1.5 < lived < 10.0, f"expired {lived:.1f} s after the restart"
    # logged once the expiry has committed, so it may follow the held count by a moment
    b.wait_for_log(rf"expired state {state.id} of {ID}\b")


def test_s9_1_an_old_state_file_is_imported_into_the_database_once(cluster, tmp_path):
    """The upgrade path: a version-1 ``purgatory-state.json`` of an older relay is imported,
    deleted, and its events are held in the database from then on (a second restart by
    SIGKILL still has them)."""
    from grasp.nostr.nip34 import Announcement, RepositoryState
    from grasp.purgatory import PurgatoryStore

    owner = Key()
    b = cluster.relay("B", fixed_domain=True)
    announcement = announcement_listing(owner, ID, [b.domain])
    state = owner.state(ID, {"refs/heads/main": "a" * 40})
    b.publish(announcement)  # held in the database already; the file has it too
    assert b.stop() == 0
    old = PurgatoryStore()
    old.add_announcement(Announcement.from_event(announcement))
    old.add_state(RepositoryState.from_event(state))
    old.save(b.data_dir / "purgatory-state.json")
    b.restart()
    assert not (b.data_dir / "purgatory-state.json").exists()
    assert b.held()["30617"] == 1 and b.held()["30618"] == 1
    b.kill()
    b.restart()
    assert b.held()["30617"] == 1 and b.held()["30618"] == 1
    with b.client() as client:
        assert client.publish(state)[3] == "duplicate: in purgatory"
    assert "imported purgatory from" in "".join(b.previous_logs)
    assert for_each_ref(b.repo_path(owner.pubkey, ID)) == {}
