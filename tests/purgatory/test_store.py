"""The purgatory store: what is held and how
(S1.3), what an identifier needs (S2.3), URLs (S3.1)."""

from grasp.nostr.address import DeletionRequest
from grasp.nostr.event import public_key, sign_event
from grasp.nostr.results import Result
from grasp.purgatory import (
    DUPLICATE_RESULT,
    EXPIRED_RESULT,
    HELD_RESULT,
    AddOutcome,
    Source,
)
from tests.purgatory.helpers import ALICE, BOB, CAROL, announcement, make_store, oid, pr, state


def test_s1_2_answers():
    assert HELD_RESULT == Result(True, "purgatory: won't be served until git data arrives")
    assert DUPLICATE_RESULT == Result(True, "duplicate: in purgatory")
    assert EXPIRED_RESULT == Result(
        False, "invalid: previously expired from purgatory without git data"
    )


def test_s1_3_several_states_per_identifier_oldest_first():
    store, _, _ = make_store()
    newer = state(ALICE, "repo", {"refs/heads/main": oid(2)}, created_at=200)
    older = state(BOB, "repo", {"refs/heads/main": oid(1)}, created_at=100)
    other = state(ALICE, "other", {"refs/heads/main": oid(3)})
    for s in (newer, older, other):
        assert store.add_state(s) is AddOutcome.ADDED
    assert store.add_state(newer, Source.SYNC) is AddOutcome.DUPLICATE
    assert store.states_for("repo") == [older, newer]
    assert store.states_for("other") == [other]
    assert store.states_for("none") == []
    assert store.contains(newer.event.id) and store.get(newer.event.id) == newer.event


def test_s2_3_needed_oids_union_and_pending():
    store, _, _ = make_store()
    store.add_state(
        state(
            ALICE,
            "repo",
            {
                "refs/heads/main": oid(1),
                "refs/tags/v1": oid(2),
                "refs/tags/v1^{}": oid(9),
                "refs/heads/sym": "ref: refs/heads/main",
            },
        )
    )
    store.add_state(state(BOB, "repo", {"refs/heads/main": oid(1), "refs/heads/dev": oid(3)}))
    store.add_pr(pr(CAROL, ["elsewhere", "repo"], oid(4)))  # second a tag still counts
    store.add_placeholder("ee" * 32, oid(5))  # placeholders need nothing
    assert store.needed_oids("repo") == {oid(1), oid(2), oid(3), oid(4)}
    assert store.needed_oids("elsewhere") == {oid(4)}
    assert store.has_pending_events("repo") and store.has_pending_events("elsewhere")
    assert not store.has_pending_events("unknown") and store.needed_oids("unknown") == set()
    assert store.pending_identifiers() == ["elsewhere", "repo"]


def test_placeholders_are_not_pending_events():
    store, _, _ = make_store()
    assert store.add_placeholder("ee" * 32, oid(5)) is AddOutcome.ADDED
    assert store.add_placeholder("ee" * 32, oid(5)) is AddOutcome.DUPLICATE
    assert store.placeholder_commit("ee" * 32) == oid(5)
    assert not store.contains("ee" * 32) and store.get("ee" * 32) is None
    assert store.pending_identifiers() == []
    assert store.counts()["placeholder"] == 1


def test_s1_3_pr_takes_over_its_placeholder():
    store, _, _ = make_store()
    held = pr(BOB, ["repo"], oid(1))
    store.add_placeholder(held.event_id, oid(1))
    assert store.add_pr(held) is AddOutcome.REPLACED
    assert store.placeholder_commit(held.event_id) is None
    assert store.pr(held.event_id) == held
    assert store.add_pr(held) is AddOutcome.DUPLICATE
    assert store.add_placeholder(held.event_id, oid(1)) is AddOutcome.DUPLICATE
    assert store.prs_for("repo") == [held]


def test_s3_1_pr_clone_urls_in_arrival_order_without_repeats():
    store, _, _ = make_store()
    first = pr(BOB, ["repo"], oid(1), clone=("https://b/x.git", "https://a/x.git"), created_at=300)
    second = pr(
        CAROL, ["repo"], oid(2), clone=("https://a/x.git", "https://c/x.git"), created_at=100
    )
    unrelated = pr(CAROL, ["other"], oid(3), clone=("https://z/x.git",))
    for p in (first, second, unrelated):
        store.add_pr(p)
    expected = ["https://b/x.git", "https://a/x.git", "https://c/x.git"]
    assert store.pr_clone_urls("repo") == expected
    assert store.prs_for("repo") == [first, second]
    assert store.pr_clone_urls("nothing") == []


def test_remove_by_id_for_every_kind_of_entry():
    store, _, _ = make_store()
    s = state(ALICE, "repo", {"refs/heads/main": oid(1)})
    p = pr(BOB, ["repo", "other"], oid(2))
    a = announcement(ALICE, "repo")
    store.add_state(s)
    store.add_pr(p)
    store.add_placeholder("ee" * 32, oid(3))
    store.add_announcement(a)
    for event_id in (s.event.id, p.event_id, "ee" * 32, a.event.id):
        assert store.remove(event_id)
        assert not store.remove(event_id)
    assert store.pending_identifiers() == [] and store.needed_oids("other") == set()
    assert store.counts() == {"30617": 0, "30618": 0, "1618": 0, "1619": 0, "placeholder": 0}
    assert not store.is_expired(s.event.id)  # release/removal is not expiry


def test_announcement_purgatory():
    store, _, _ = make_store()
    alice_ann = announcement(ALICE, "repo", created_at=100, clone=("https://a/x.git",))
    bob_ann = announcement(BOB, "repo")
    assert store.add_announcement(alice_ann) is AddOutcome.ADDED
    assert store.add_announcement(bob_ann, Source.SYNC) is AddOutcome.ADDED
    assert store.add_announcement(alice_ann) is AddOutcome.DUPLICATE
    assert store.announcement(public_key(ALICE), "repo") == alice_ann
    assert store.announcements_for("repo") == [alice_ann, bob_ann]
    older = announcement(ALICE, "repo", created_at=50)
    assert store.add_announcement(older) is AddOutcome.STALE
    newer = announcement(ALICE, "repo", created_at=150)
    assert store.add_announcement(newer) is AddOutcome.REPLACED
    assert store.announcement(public_key(ALICE), "repo") == newer
    assert not store.contains(alice_ann.event.id)
    assert store.promote_announcement(public_key(ALICE), "repo") == newer
    assert store.promote_announcement(public_key(ALICE), "repo") is None
    assert store.announcements_for("repo") == [bob_ann]
    assert store.pending_identifiers() == []  # announcements alone are not pending sync work


def test_s10_4_deletion_removes_matching_held_events_of_the_same_author():
    store, _, _ = make_store()
    mine = state(ALICE, "repo", {"refs/heads/main": oid(1)}, created_at=100)
    theirs = state(BOB, "repo", {"refs/heads/main": oid(1)}, created_at=100)
    my_pr = pr(ALICE, ["repo"], oid(2))
    my_ann = announcement(ALICE, "repo", created_at=100)
    later_ann = announcement(ALICE, "later", created_at=500)
    for entry in (mine, theirs):
        store.add_state(entry)
    store.add_pr(my_pr)
    store.add_announcement(my_ann)
    store.add_announcement(later_ann)
    alice = public_key(ALICE)
    deletion = sign_event(
        ALICE,
        5,
        [
            ["e", my_pr.event_id],
            ["e", theirs.event.id],
            ["a", f"30618:{alice}:repo"],
            ["a", f"30617:{alice}:repo"],
            ["a", f"30617:{alice}:later"],
        ],
        "",
        created_at=200,
    )
    removed = store.remove_deleted(DeletionRequest.from_event(deletion))
    assert set(removed) == {mine.event.id, my_pr.event_id, my_ann.event.id}
    assert store.states_for("repo") == [theirs]
    assert store.announcement(alice, "later") == later_ann  # newer than the deletion


def test_counts_by_kind():
    store, _, _ = make_store()
    store.add_state(state(ALICE, "repo", {"refs/heads/main": oid(1)}))
    store.add_pr(pr(BOB, ["repo"], oid(2)))
    store.add_pr(pr(BOB, ["repo"], oid(3), kind=1619))
    store.add_announcement(announcement(ALICE, "repo"))
    assert store.counts() == {"30617": 1, "30618": 1, "1618": 1, "1619": 1, "placeholder": 0}
