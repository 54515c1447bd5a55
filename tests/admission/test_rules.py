"""The GRASP-01 admission rules, one pure function at a time (S10.4, S1.4)."""

import pytest

from grasp.admission import rules
from grasp.nostr import kinds
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import sign_event
from grasp.nostr.nip34 import Announcement
from tests.support.nip34 import Key

DOMAIN = "relay.example:7777"


def _announcement(key, clone, relays, d="repo"):
    return Announcement.from_event(key.announcement(d, clone=clone, relays=relays))


@pytest.mark.parametrize(
    ("clone", "relays", "ok"),
    [
        (["https://{d}/{npub}/repo.git"], ["wss://{d}"], True),
        (["http://{d}/{npub}/repo.git"], ["ws://{d}/"], True),
        (["https://RELAY.example:7777/{npub}/repo.git"], ["wss://Relay.Example:7777"], True),
        (["https://{d}/{npub}/repo.git"], [], False),  # clone only
        ([], ["wss://{d}"], False),  # relays only
        (["https://{d}/{npub}/other.git"], ["wss://{d}"], False),  # wrong identifier
        (["https://{d}/npub1someoneelse/repo.git"], ["wss://{d}"], False),  # wrong owner
        (["https://notrelay.example:7777/{npub}/repo.git"], ["wss://notrelay.example:7777"], False),
        (["https://relay.example/{npub}/repo.git"], ["wss://relay.example"], False),  # port differs
    ],
)
def test_lists_this_service_needs_clone_and_relays_with_our_authority(clone, relays, ok):
    key = Key()
    fill = {"d": DOMAIN, "npub": npub_encode(key.pubkey)}
    announcement = _announcement(
        key, [c.format(**fill) for c in clone], [r.format(**fill) for r in relays]
    )
    assert rules.lists_this_service(announcement, DOMAIN) is ok


def test_check_announcement_refuses_with_blocked_and_says_what_to_list():
    key = Key()
    refusal = rules.check_announcement(
        _announcement(key, [], []), DOMAIN, maintainer_of_accepted=False
    )
    assert not refusal.accepted and refusal.message.startswith("blocked: ")
    clone = f"http://{DOMAIN}/{npub_encode(key.pubkey)}/repo.git"
    assert refusal.message == (
        "blocked: announcement does not list this relay in its 'clone' and 'relays' tags: "
        f"add {clone} to 'clone'; add ws://{DOMAIN} to 'relays'"
    )
    assert rules.check_announcement(_announcement(key, [], []), DOMAIN, True) is None


@pytest.mark.parametrize(
    ("clone", "relays", "scheme", "expected"),
    [
        (True, False, "http", "in its 'relays' tag: add ws://{d} to 'relays'"),
        (False, True, "http", "in its 'clone' tag: add http://{d}/{npub}/repo.git to 'clone'"),
        (True, False, "https", "in its 'relays' tag: add wss://{d} to 'relays'"),
        (False, True, "https", "in its 'clone' tag: add https://{d}/{npub}/repo.git to 'clone'"),
    ],
)
def test_s10_4_the_refusal_names_the_failing_tag_in_the_scheme_we_are_reached_by(
    clone, relays, scheme, expected
):
    key = Key()
    fill = {"d": DOMAIN, "npub": npub_encode(key.pubkey)}
    announcement = _announcement(
        key,
        ["https://{d}/{npub}/repo.git".format(**fill)] if clone else ["https://elsewhere/x.git"],
        ["wss://{d}".format(**fill)] if relays else ["wss://elsewhere"],
    )
    refusal = rules.check_announcement(announcement, DOMAIN, False, scheme)
    assert refusal is not None
    assert refusal.message == (
        "blocked: announcement does not list this relay " + expected.format(**fill)
    )


def test_s1_2_a_held_prs_answer_says_where_its_commit_will_come_from():
    commit = "c" * 40
    assert rules.pr_held_result(commit, 2).message == (
        f"purgatory: PR held until commit {commit} arrives: will fetch from 2 clone URLs"
    )
    assert rules.pr_held_result(commit, 1).message.endswith("will fetch from 1 clone URL")
    held = rules.pr_held_result(commit, 0)
    assert held.accepted and held.message.endswith(": waiting for a push")


def test_check_repository_author():
    assert rules.check_repository_author([], []) is rules.NO_ANNOUNCEMENT
    assert rules.NO_ANNOUNCEMENT.message == "invalid: no announcement exists for this repository"
    assert rules.check_repository_author(["ann"], []) is rules.NOT_AUTHORISED
    assert rules.NOT_AUTHORISED.message == "invalid: author not authorized for this repository"
    assert rules.check_repository_author(["ann"], ["owner"]) is None


def test_expired_events_are_refused_only_when_synced():
    event = Key().state("repo", {})
    refusal = rules.check_not_expired(event, synced=True, expired=True)
    assert refusal.message == "invalid: previously expired from purgatory without git data"
    assert rules.check_not_expired(event, synced=False, expired=True) is None
    assert rules.check_not_expired(event, synced=True, expired=False) is None


def test_s14_2_sha256_object_ids_are_invalid_here():
    assert rules.check_sha1_oids(["a" * 40, "b" * 40]) is None
    assert rules.check_sha1_oids([]) is None
    refusal = rules.check_sha1_oids(["a" * 40, "c" * 64])
    assert refusal.message == (
        f"invalid: object id {'c' * 64} is not a SHA-1 id; repositories on this relay use SHA-1"
    )


def test_references_are_read_from_a_A_q_and_e_E_q_tags():
    """S15.1: addresses of any kind count (a state, any addressable or replaceable event)."""
    key, owner = Key(), Key()
    coordinate = f"30617:{owner.pubkey}:repo"
    state = f"30618:{owner.pubkey}:repo"
    event = sign_event(
        key.secret,
        kinds.ISSUE,
        [["a", coordinate], ["q", "f" * 64], ["e", "E" * 64], ["E", "1" * 64], ["a", "1:x:y"]]
        + [["A", state], ["q", coordinate]],
        "an issue",
    )
    assert [str(a) for a in rules.referenced_addresses(event)] == [coordinate, state]
    assert rules.referenced_ids(event) == ["1" * 64, "f" * 64]
    assert rules.reference_keys(event) == [coordinate, state, "1" * 64, "f" * 64]


def test_own_keys_are_the_id_and_the_address_of_addressable_events():
    key = Key()
    note = sign_event(key.secret, 1, [], "hi")
    assert rules.own_keys(note) == [note.id]
    state = key.state("repo", {})
    assert rules.own_keys(state) == [state.id, f"30618:{key.pubkey}:repo"]
    grasps = sign_event(key.secret, kinds.USER_GRASP_LIST, [], "")
    assert rules.own_keys(grasps) == [grasps.id, f"10317:{key.pubkey}:"]


def test_check_related_names_what_the_event_tags_when_refusing():
    key = Key()
    assert rules.check_related(True, sign_event(key.secret, 1, [], "x")) is None
    bare = rules.check_related(False, sign_event(key.secret, 1, [], "x"))
    assert bare.message == (
        "blocked: kind 1 must reference a repository or an event accepted by this relay, or "
        "be referenced by one: it tags no repository or event (a/A/q/e/E), and no accepted "
        "event tags it"
    )
    tagged = sign_event(key.secret, 7, [["e", "ab" * 32], ["a", f"30617:{key.pubkey}:x"]], "+")
    message = rules.check_related(False, tagged).message
    assert message.startswith("blocked: kind 7 must reference")
    assert f"30617:{key.pubkey[:12]}...:x" in message and "event abababababab..." in message
