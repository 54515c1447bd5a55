"""GRASP-01 "Nostr relay", "Purgatory" and "NIP-11" lines (L7-L30), against a relay process.

Each test is named after the requirement line it proves (docs/conformance.rst lists them; a
unit test checks the table against these names). protocol.md §4.2 has the line texts.
"""

from __future__ import annotations

import json

import pytest

from grasp.nostr import kinds
from grasp.nostr.bech32 import npub_encode
from tests.conformance.conftest import BANNED, CRITERIA, CURATED_RATE, DENIED
from tests.conformance.support import HELD, Grasp, fresh, http, signed
from tests.support.nip34 import Key

pytestmark = pytest.mark.slow


def test_grasp01_l7_nip01_relay_at_root_accepts_announcements_and_states(grasp: Grasp):
    """L7 MUST: a NIP-01 relay at ``/`` that accepts announcements and their states."""
    owner, d = Key(), fresh()
    with grasp.client() as client:
        assert client.req("empty", {"kinds": [30617], "authors": [owner.pubkey]}) == []
        assert client.publish(grasp.announcement(owner, d))[2:] == [True, HELD]
        state = owner.state(d, {"refs/heads/main": "a" * 40})
        assert client.publish(state)[2:] == [True, HELD]
        assert client.publish(state)[2:] == [True, "duplicate: in purgatory"]


@pytest.mark.parametrize("lists", ["clone-only", "relays-only", "neither"])
def test_grasp01_l9_announcements_must_list_the_service_in_clone_and_relays(grasp, lists):
    """L9 MUST: an announcement that does not list the service in both tags is refused."""
    owner, d = Key(), fresh()
    ours_clone, ours_relay = grasp.clone_url(owner, d), f"ws://{grasp.domain}"
    clone = [ours_clone] if lists == "clone-only" else ["https://elsewhere.example/x.git"]
    relays = [ours_relay] if lists == "relays-only" else ["wss://elsewhere.example"]
    event = owner.announcement(d, clone=clone, relays=relays)
    ok = grasp.publish(event)
    assert ok[2] is False and ok[3].startswith("blocked: "), ok
    assert not (grasp.process.data_dir / "repos" / npub_encode(owner.pubkey) / f"{d}.git").exists()
    assert grasp.publish(grasp.announcement(owner, d))[2:] == [True, HELD]  # both: accepted


def test_grasp01_l11_announcements_may_be_refused_on_other_criteria(curated: Grasp):
    """L11 MAY: ``--repo-deny`` refuses an announcement naming the rule; others pass."""
    owner = Key()
    refused = curated.publish(curated.announcement(owner, DENIED))
    assert refused[2] is False and refused[3].startswith("blocked: ")
    assert f"--repo-deny {DENIED}" in refused[3]
    assert curated.publish(curated.announcement(owner, fresh()))[2:] == [True, HELD]


def test_grasp01_l13_forward_reference_kind1(grasp: Grasp):
    """L13 MUST "... or are tagged by": an accepted issue whose ``q`` names a kind-1 note that
    arrives afterwards makes the note acceptable; so does a comment named by a later one."""
    owner, someone, d = Key(), Key(), fresh()
    repo = grasp.served_repository(owner, d)
    note = signed(someone, 1, [], "the note the issue quotes")
    first = signed(someone, kinds.COMMENT, [], "a comment that tags nothing")
    assert grasp.publish(note)[3].startswith("blocked: ")  # nothing names it yet
    issue = signed(someone, kinds.ISSUE, [["a", f"30617:{repo.pubkey}:{d}"], ["q", note.id]])
    assert grasp.publish(issue)[2:] == [True, ""]
    reply = signed(someone, kinds.COMMENT, [["E", issue.id], ["e", first.id]])
    assert grasp.publish(reply)[2:] == [True, ""]
    assert grasp.publish(note)[2:] == [True, ""]
    assert grasp.publish(first)[2:] == [True, ""]
    assert grasp.served(note.id) and grasp.served(first.id)


def test_grasp01_l13_any_kind_tagging_accepted_events_is_kept_orphans_are_not(grasp: Grasp):
    """L13 MUST: events of any kind that tag an accepted announcement, issue or patch."""
    owner, someone, d = Key(), Key(), fresh()
    repo = grasp.served_repository(owner, d)
    address = f"30617:{repo.pubkey}:{d}"
    note = signed(someone, 1, [["a", address]], "nice repository")
    issue = signed(someone, kinds.ISSUE, [["a", address]])
    patch = signed(someone, kinds.PATCH, [["a", address]], "From 0000 Mon Sep 17 00:00:00 2001")
    reaction = signed(owner, 7, [["e", issue.id]], "+")
    grasps = signed(owner, kinds.USER_GRASP_LIST, [["g", f"ws://{grasp.domain}"]])
    reply = signed(someone, 1, [["e", patch.id]], "looks good")
    for event in (note, issue, patch, reaction, grasps, reply):
        assert grasp.publish(event)[2:] == [True, ""], event.kind
    orphan = signed(someone, 1, [["e", "ab" * 32]], "nobody knows this")
    refused = grasp.publish(orphan)
    assert refused[2] is False and refused[3].startswith("blocked: kind 1 must reference")
    assert "event abababababab..." in refused[3]  # the reason names what was missing


def test_grasp01_l18_events_may_be_refused_for_spam_prevention_or_curation(curated: Grasp):
    """L18 MAY: a banned key's events are refused; past the connection's rate limit,
    ``rate-limited:``."""
    owner = Key()
    refused = curated.publish(signed(BANNED, 1, []))
    assert refused[2] is False and "--deny-pubkey" in refused[3]
    with curated.client() as client:
        answers = [client.publish(curated.announcement(owner, fresh())) for _ in range(7)]
    assert [a[2] for a in answers] == [True] * CURATED_RATE + [False, False]
    assert answers[-1][3].startswith("rate-limited: ")


def test_grasp01_l22_new_events_are_held_in_purgatory_with_the_message(grasp: Grasp):
    """L22 SHOULD: announcements, states, PRs and PR updates: ``OK true "purgatory: ..."``,
    not served until the git data arrives (the 30-minute expiry: tests/purgatory)."""
    owner, contributor, d = Key(), Key(), fresh()
    announcement = grasp.announcement(owner, d)
    state = owner.state(d, {"refs/heads/main": "b" * 40})
    pr = contributor.pr(owner.pubkey, d, "c" * 40)
    with grasp.client() as client:
        assert client.publish(announcement)[2:] == [True, HELD]
        assert client.publish(state)[2:] == [True, HELD]
        ok = client.publish(pr)
    assert ok[2] is True and ok[3].startswith("purgatory: ")
    for event in (announcement, state, pr):
        assert not grasp.served(event.id)


def test_grasp01_l26_serves_a_nip11_document(grasp: Grasp):
    """L26 MUST: NIP-11 for ``Accept: application/nostr+json`` on ``/``."""
    answer = http("GET", grasp.http_url + "/", headers={"Accept": "application/nostr+json"})
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/nostr+json"
    info = json.loads(answer.data)
    assert 1 in info["supported_nips"] and 11 in info["supported_nips"]
    assert info["name"] and info["version"] and info["software"].startswith("https://")


def test_grasp01_l28_supported_grasps_is_a_string_array(grasp: Grasp, curated: Grasp):
    """L28 MUST: every supported GRASP as ``GRASP-XX`` strings (GRASP-06 only when on)."""
    info = grasp.nip11()
    assert info["supported_grasps"] == ["GRASP-01", "GRASP-02", "GRASP-06"]
    assert all(isinstance(g, str) and len(g) == 8 for g in info["supported_grasps"])
    assert curated.nip11()["supported_grasps"] == ["GRASP-01", "GRASP-02"]


def test_grasp01_l29_repo_acceptance_criteria_is_a_human_readable_string(grasp, curated):
    """L29 MUST: ``repo_acceptance_criteria``; the default names this relay, an operator's
    text replaces it."""
    criteria = grasp.nip11()["repo_acceptance_criteria"]
    assert isinstance(criteria, str) and grasp.domain in criteria and "clone" in criteria
    assert curated.nip11()["repo_acceptance_criteria"] == CRITERIA


def test_grasp01_l30_curation_is_listed_exactly_when_events_are_curated(grasp, curated):
    """L30 MUST: ``curation`` only beyond generic spam prevention (the rate limit is not)."""
    assert "curation" not in grasp.nip11()
    summary = curated.nip11()["curation"]
    assert isinstance(summary, str) and summary.startswith("Curated: ")
