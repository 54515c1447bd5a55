"""GRASP-05 archive mode (S17.5): the matching rules, the write policy, NIP-11 and the CLI."""

from __future__ import annotations

import pytest

from grasp.admission.archive import Archive
from grasp.admission.intake import EventSource
from grasp.admission.write_policy import GraspWritePolicy
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.nip34 import Announcement
from grasp.relay.config import Config, ConfigError, parse_config
from grasp.relay.transport.nip11 import relay_information
from tests.admission.test_write_policy import DOMAIN, HELD, RecordingSync, _ours
from tests.relay.test_cli import one_error_line, run_cli
from tests.support.nip34 import Key

USER = EventSource.CLIENT


def elsewhere(key: Key, d: str = "repo") -> Announcement:
    """An announcement that lists only another relay (A), never this one."""
    npub = npub_encode(key.pubkey)
    event = key.announcement(
        d, clone=[f"https://a.example/{npub}/{d}.git"], relays=["wss://a.example"]
    )
    return Announcement.from_event(event)


def test_s17_5_rules_match_npub_npub_identifier_and_identifier():
    alice, bob = Key(), Key()
    a, b = npub_encode(alice.pubkey), npub_encode(bob.pubkey)
    by_owner = Archive.from_texts([a])
    assert by_owner.covers(alice.pubkey, "x") and not by_owner.covers(bob.pubkey, "x")
    one = Archive.from_texts([f"{b}/tool"])
    assert one.covers(bob.pubkey, "tool")
    assert not one.covers(bob.pubkey, "other") and not one.covers(alice.pubkey, "tool")
    by_name = Archive.from_texts(["tool"])
    assert by_name.covers(alice.pubkey, "tool") and by_name.covers(bob.pubkey, "tool")
    assert not by_name.covers(alice.pubkey, "tools")
    assert Archive(everything=True).covers(bob.pubkey, "anything")
    assert not Archive().active and not Archive().covers(alice.pubkey, "tool")


def test_s17_5_only_announcements_not_listing_us_are_archived():
    key = Key()
    archive = Archive(everything=True)
    assert archive.archives(elsewhere(key), DOMAIN)
    listing_us = Announcement.from_event(_ours(key))
    assert not archive.archives(listing_us, DOMAIN)  # hosted the GRASP-01 way, pushable
    refusal = archive.push_refusal(elsewhere(key))
    assert "read-only archive" in refusal and "GRASP-05" in refusal
    assert f"https://a.example/{npub_encode(key.pubkey)}/repo.git" in refusal


@pytest.mark.parametrize(
    "argv, env, expected",
    [
        (["--archive", "tool", "--archive", "other"], {}, ("tool", "other")),
        ([], {"GRASP_ARCHIVE": "tool, other"}, ("tool", "other")),
        (["--archive", "mine"], {"GRASP_ARCHIVE": "tool"}, ("mine",)),  # the flag wins
    ],
)
def test_s17_5_archive_flag_repeatable_and_env_comma_separated(argv, env, expected):
    assert parse_config(argv, env).archive == expected


def test_s17_5_archive_all_switch_and_env():
    assert parse_config(["--archive-all"], {}).archive_all is True
    assert parse_config([], {"GRASP_ARCHIVE_ALL": "yes"}).archive_policy.everything
    assert not parse_config([], {}).archive_policy.active


@pytest.mark.parametrize(
    "argv, env, fragment",
    [
        (
            ["--archive", "npub1nope/tool"],
            {},
            "argument --archive: 'npub1nope' is not a valid npub",
        ),
        (["--archive", "x/"], {}, "argument --archive: 'x/': repository identifier is empty"),
        (["--archive", "a/b/c"], {}, "'a/b/c': repository identifier contains '/'"),
        ([], {"GRASP_ARCHIVE": "tool,npub1bad"}, "environment variable GRASP_ARCHIVE="),
    ],
)
def test_s17_5_malformed_archive_rule_is_one_line_config_error(argv, env, fragment):
    with pytest.raises(ConfigError) as info:
        parse_config(argv, env)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_s17_5_malformed_archive_rule_is_one_cli_line_and_exit_2(tmp_path):
    result = run_cli("--data-dir", str(tmp_path / "d"), "--archive", "npub1nope")
    assert result.returncode == 2
    assert "argument --archive: 'npub1nope' is not a valid npub" in one_error_line(result)


def test_s17_5_nip11_advertises_grasp05_and_the_read_only_scope():
    plain = relay_information(Config())
    assert "GRASP-05" not in plain["supported_grasps"] and "curation" not in plain
    info = relay_information(Config(archive=("tool",)))
    assert "GRASP-05" in info["supported_grasps"]
    assert "read-only" in info["curation"] and "tool" in info["curation"]
    everything = relay_information(Config(archive_all=True, repo_deny=("spam",)))
    assert "every announced repository" in everything["curation"]
    assert everything["curation"].startswith("Curated: ")  # both policies are stated
    assert "GRASP-05" in everything["repo_acceptance_criteria"]


@pytest.fixture
def archiving(world):
    def policy(archive: Archive) -> GraspWritePolicy:
        return GraspWritePolicy(
            domain=DOMAIN,
            index=world.index,
            store=world.store,
            purgatory=world.purgatory,
            sync=RecordingSync(world),
            notify=world.notified.append,
            archive=archive,
        )

    return policy


def test_s17_5_a_covered_announcement_is_held_and_its_repository_created(archiving, world):
    key = Key()
    event = elsewhere(key, "tool").event
    refused = archiving(Archive())(event, USER)
    assert not refused.accepted and refused.message.startswith("blocked: ")
    assert archiving(Archive.from_texts(["other"]))(event, USER).accepted is False
    result = archiving(Archive.from_texts(["tool"]))(event, USER)
    assert result.accepted and result.message == HELD  # waits for git data like ours (S1.1)
    assert (world.data_dir / "repos" / npub_encode(key.pubkey) / "tool.git").is_dir()
    assert world.purgatory.announcement(key.pubkey, "tool") is not None


def test_s17_5_curation_still_decides_first(world):
    key = Key()
    policy = GraspWritePolicy(
        domain=DOMAIN,
        index=world.index,
        store=world.store,
        purgatory=world.purgatory,
        sync=RecordingSync(world),
        notify=world.notified.append,
        archive=Archive(everything=True),
        curation=parse_config(["--repo-deny", "tool"], {}).curation,
    )
    result = policy(elsewhere(key, "tool").event, USER)
    assert not result.accepted and "--repo-deny tool" in result.message


def test_s17_5_a_state_of_an_archive_syncs_at_once_no_push_can_come(world):
    key, sync = Key(), RecordingSync(world)
    policy = GraspWritePolicy(
        domain=DOMAIN,
        index=world.index,
        store=world.store,
        purgatory=world.purgatory,
        sync=sync,
        notify=world.notified.append,
        archive=Archive(everything=True),
    )
    assert policy(elsewhere(key, "tool").event, USER).accepted
    held = policy(key.state("tool", {"refs/heads/main": "1" * 40}), USER)
    assert held.accepted and held.message == HELD
    assert sync.enqueued[-1] == ("tool", "synced")  # the 0.5 s path, not the 180 s wait (S4.2)
    ordinary = Key()
    assert policy(_ours(ordinary, d="mine"), USER).accepted
    policy(ordinary.state("mine", {"refs/heads/main": "2" * 40}), USER)
    assert sync.enqueued[-1] == ("mine", "user")  # a push may still follow here
