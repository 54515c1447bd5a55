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
    assert f"https://{DOMAIN}/{npub_encode(key.pubkey)}/repo.git" in refusal.message
    assert rules.check_announcement(_announcement(key, [], []), DOMAIN, True) is None


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
    key, owner = Key(), Key()
    coordinate = f"30617:{owner.pubkey}:repo"
    event = sign_event(
        key.secret,
        kinds.ISSUE,
        [["a", coordinate], ["q", "f" * 64], ["e", "E" * 64], ["E", "1" * 64], ["a", "1:x:y"]],
        "an issue",
    )
    assert [str(a) for a in rules.referenced_addresses(event)] == [coordinate]
    assert rules.referenced_ids(event) == ["1" * 64, "f" * 64]


def test_related_and_kind_checks():
    assert rules.check_related(True, kinds.ISSUE) is None
    assert rules.check_related(False, kinds.ISSUE).message.startswith(
        "blocked: kind 1621 must reference"
    )
    for kind in (30617, 30618, 1617, 1618, 1619, 1621, 1630, 1633, 1111, 5):
        assert rules.check_kind(kind) is None
    assert rules.check_kind(1).message == "blocked: kind 1 is not accepted by this GRASP relay"
