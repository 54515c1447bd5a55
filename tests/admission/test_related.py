"""Related events of any kind (S15.1, GRASP-01 L13) and deletions by coordinate (S15.4), through
the real write policy over a real store (with its referenced-ids index) and purgatory."""

from grasp.admission.intake import EventSource
from grasp.nostr import kinds
from grasp.nostr.event import sign_event
from grasp.nostr.filters import Filter
from tests.admission.test_write_policy import HELD, D
from tests.support.nip34 import Key

USER = EventSource.CLIENT


def _served(world, event):
    return bool(world.store.query([Filter(ids={event.id})]))


def _repo(world):
    owner = Key()
    world.announce(owner, D)
    return owner, f"30617:{owner.pubkey}:{D}"


def test_s15_1_any_kind_that_tags_an_accepted_repository_or_event_is_kept(policy, world):
    owner, coordinate = _repo(world)
    someone = Key()
    note = sign_event(someone.secret, 1, [["a", coordinate]], "nice repo")
    issue = sign_event(someone.secret, kinds.ISSUE, [["a", coordinate]], "bug")
    reaction = sign_event(owner.secret, 7, [["e", issue.id]], "+")
    quote = sign_event(someone.secret, 1, [["q", coordinate]], "look")
    for event in (note, issue, reaction, quote):
        result = policy(event, USER)
        assert (result.accepted, result.message) == (True, ""), event.kind
        assert _served(world, event)


def test_s15_1_a_forward_reference_makes_the_later_event_acceptable(policy, world):
    """An issue whose ``q`` names a kind-1 note that arrives afterwards; a comment named by a
    later comment; an article named by its address before it exists."""
    _, coordinate = _repo(world)
    someone = Key()
    note = sign_event(someone.secret, 1, [], "the note the issue quotes")
    first = sign_event(someone.secret, kinds.COMMENT, [], "first comment, tags nothing")
    article = sign_event(someone.secret, 30023, [["d", "essay"]], "long form")
    issue = sign_event(
        someone.secret,
        kinds.ISSUE,
        [["a", coordinate], ["q", note.id], ["a", f"30023:{someone.pubkey}:essay"]],
        "see the note",
    )
    assert policy(note, USER).message.startswith("blocked: ")  # nothing names it yet
    assert policy(issue, USER).message == ""
    reply = sign_event(someone.secret, kinds.COMMENT, [["E", issue.id], ["e", first.id]], "re")
    assert policy(reply, USER).message == ""
    for later in (note, first, article):
        result = policy(later, USER)
        assert (result.accepted, result.message) == (True, ""), later.kind
        assert _served(world, later)
    assert world.store.referrer_of([note.id]) == issue.id


def test_s15_1_orphans_are_blocked_naming_what_was_missing(policy, world):
    stranger = Key()
    missing = f"30617:{stranger.pubkey}:{D}"
    orphan = sign_event(stranger.secret, 1, [["a", missing], ["e", "ab" * 32]], "x")
    result = policy(orphan, USER)
    assert not result.accepted and result.message.startswith("blocked: kind 1 must reference")
    assert f"30617:{stranger.pubkey[:12]}...:{D}" in result.message
    assert "event abababababab..." in result.message
    assert not _served(world, orphan)
    # a refused event names nothing: its tags do not open the door for anything
    assert world.store.referrer_of(["ab" * 32]) is None


def test_user_grasp_lists_of_hosted_authors_are_kept(policy, world):
    owner, _ = _repo(world)
    grasps = sign_event(owner.secret, kinds.USER_GRASP_LIST, [["g", "wss://relay.example"]], "")
    assert policy(grasps, USER).message == ""
    stranger = sign_event(Key().secret, kinds.USER_GRASP_LIST, [["g", "wss://x.example"]], "")
    assert policy(stranger, USER).message.startswith("blocked: kind 10317")


def test_s15_4_deletion_by_coordinate_unholds_the_authors_states_up_to_its_time(policy, world):
    owner, maintainer = Key(), Key()
    world.announce(owner, D, maintainers=[maintainer.pubkey])
    early = maintainer.state(D, {"refs/heads/main": "a" * 40}, created_at=1_700_000_100)
    assert policy(early, USER).message == HELD
    theirs = owner.state(D, {"refs/heads/main": "b" * 40}, created_at=1_700_000_100)
    assert policy(theirs, USER).message == HELD
    deletion = sign_event(
        maintainer.secret,
        kinds.DELETION,
        [["a", f"30618:{maintainer.pubkey}:{D}"], ["k", "30618"]],
        "",
        created_at=1_700_000_200,
    )
    result = policy(deletion, USER)
    assert (result.accepted, result.message) == (True, "")
    assert not world.purgatory.contains(early.id)
    assert world.purgatory.contains(theirs.id)  # another author's state is not touched
    later = maintainer.state(D, {"refs/heads/main": "c" * 40}, created_at=1_700_000_300)
    assert policy(later, USER).message == HELD  # newer than the deletion: held again


def test_s15_4_deletion_by_coordinate_removes_a_stored_state(policy, world):
    owner, _ = _repo(world)
    state = owner.state(D, {})  # no refs: satisfiable at once, stored
    assert policy(state, USER).message == ""
    assert _served(world, state)
    deletion = sign_event(owner.secret, kinds.DELETION, [["a", f"30618:{owner.pubkey}:{D}"]], "")
    assert policy(deletion, USER).message == ""
    assert not _served(world, state)
    policy(state, USER)  # sent again: the store remembers the deletion (NIP-09)
    assert not _served(world, state)
