"""Curation (S15.5, GRASP-01 L11/L18/L30): repository allow/deny rules, the pubkey deny-list,
their refusals through the real write policy, and the NIP-11 summary."""

import pytest

from grasp.admission.curation import Curation, RepoRule, parse_pubkey
from grasp.admission.intake import EventSource
from grasp.admission.write_policy import GraspWritePolicy
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import sign_event
from tests.admission.test_write_policy import DOMAIN, HELD, RecordingSync, _ours
from tests.support.nip34 import Key

USER = EventSource.CLIENT


def test_s15_5_rules_parse_npub_npub_identifier_and_identifier():
    key = Key()
    npub = npub_encode(key.pubkey)
    assert RepoRule.parse(npub) == RepoRule(key.pubkey, None)
    assert RepoRule.parse(f"{npub}/my-repo") == RepoRule(key.pubkey, "my-repo")
    assert RepoRule.parse(" my-repo ") == RepoRule(None, "my-repo")
    assert str(RepoRule.parse(f"{npub}/x")) == f"{npub}/x"
    assert parse_pubkey(npub) == key.pubkey == parse_pubkey(key.pubkey.upper())


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "must not be empty"),
        ("npub1qqqq/x", "not a valid npub"),
        ("npub1zzzz", "not a valid npub"),
        ("..", "not allowed"),
        ("abc/def", "neither an npub nor"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        RepoRule.parse(text)


def test_s15_5_deny_beats_allow_and_an_allow_list_admits_only_what_it_matches():
    alice, bob = Key(), Key()
    curation = Curation.from_texts(
        allow=[npub_encode(alice.pubkey), "shared"], deny=[f"{npub_encode(alice.pubkey)}/secret"]
    )
    assert curation.check_repository(alice.pubkey, "anything") is None
    assert curation.check_repository(bob.pubkey, "shared") is None
    refused = curation.check_repository(alice.pubkey, "secret")
    assert not refused.accepted and refused.message.startswith("blocked: ")
    assert f"--repo-deny {npub_encode(alice.pubkey)}/secret" in refused.message
    outside = curation.check_repository(bob.pubkey, "other")
    assert outside.message.startswith("blocked: ") and "--repo-allow" in outside.message


def test_s15_2_curation_summary_exactly_when_a_rule_is_active():
    assert Curation().summary() is None and not Curation().active
    assert Curation.from_texts(deny=["x"]).summary().startswith("Curated: ")
    key = Key()
    summary = Curation.from_texts(pubkeys=[key.pubkey]).summary()
    assert summary and key.pubkey not in summary and npub_encode(key.pubkey) not in summary


@pytest.fixture
def curated(world):
    banned = Key()
    policy = GraspWritePolicy(
        domain=DOMAIN,
        index=world.index,
        store=world.store,
        purgatory=world.purgatory,
        sync=RecordingSync(world),
        notify=world.notified.append,
        curation=Curation.from_texts(deny=["denied"], pubkeys=[npub_encode(banned.pubkey)]),
    )
    return policy, banned


def test_grasp01_l18_a_denied_key_is_refused_whatever_the_kind(curated, world):
    policy, banned = curated
    for event in (_ours(banned), sign_event(banned.secret, 1, [], "hello")):
        result = policy(event, USER)
        assert not result.accepted and "--deny-pubkey" in result.message
        assert result.message.startswith("blocked: ")
    assert not (world.data_dir / "repos").exists()


def test_grasp01_l11_a_denied_repository_is_refused_and_no_repository_is_created(curated, world):
    policy, _ = curated
    owner = Key()
    refused = policy(_ours(owner, d="denied"), USER)
    assert not refused.accepted and "--repo-deny denied" in refused.message
    assert not (world.data_dir / "repos" / npub_encode(owner.pubkey) / "denied.git").exists()
    assert policy(_ours(owner, d="fine"), USER).message == HELD
