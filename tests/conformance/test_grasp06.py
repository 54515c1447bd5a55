"""GRASP-06 contributor PR submission (L13, L15, L21-24, protocol.md §4.9), against a relay
process: ``/prs/<npub>/<identifier>.git`` with the git CLI, PR events over websocket.

Each test is named after the requirement line it proves (docs/conformance.rst lists them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import Event, sign_event
from tests.conformance.support import Grasp, fresh, git, http, push, wait_until
from tests.support.gitrepo import RepoBuilder
from tests.support.nip34 import Key

pytestmark = pytest.mark.slow


def _ls(url: str) -> dict[str, str]:
    listed = git("ls-remote", url)
    assert listed.returncode == 0, listed.stderr
    pairs = (line.split("\t") for line in listed.stdout.splitlines())
    return {ref: oid for oid, ref in pairs if ref.startswith("refs/")}


def _pr(grasp: Grasp, signer: Key, owner_pubkey: str, d: str, commit: str, clone: str) -> Event:
    tags = [["a", f"30617:{owner_pubkey}:{d}"], ["c", commit], ["clone", clone]]
    return sign_event(signer.secret, 1618, [*tags, ["subject", "contribution"]], "please pull")


def _work(tmp_path: Path) -> RepoBuilder:
    return RepoBuilder.create(tmp_path / "contribution.git")


def test_grasp06_l13_any_well_formed_path_serves_an_empty_repository(grasp: Grasp, tmp_path):
    """L13 MUST: upload-pack for any well-formed ``/prs/`` path, as an empty bare repository
    until a ``refs/nostr/<event-id>`` was accepted there; malformed paths are 404."""
    url = grasp.prs_url(Key(), f"never-pushed-{fresh()}")
    clone = tmp_path / "clone"
    cloned = git("clone", url, clone)
    assert cloned.returncode == 0, cloned.stderr
    assert git("-C", clone, "for-each-ref").stdout == ""
    for bad in ("/prs/npub1test/x.git", "/prs/" + npub_encode(Key().pubkey) + "/..%2Fx.git"):
        assert (
            http("GET", grasp.http_url + bad + "/info/refs?service=git-upload-pack").status == 404
        )


def test_grasp06_l15_pushes_to_refs_nostr_event_id_are_accepted(grasp: Grasp, tmp_path):
    """L15 MUST: a push of ``refs/nostr/<event-id>`` to a fresh path lands (no event needed
    yet: it is a placeholder that expires like the others), and the path then serves it."""
    url = grasp.prs_url(Key(), fresh())
    work = _work(tmp_path)
    tip = work.commit(branch="pr")
    event_id = Key().pubkey  # any 64 lowercase hex
    pushed = push(work.path, url, f"pr:refs/nostr/{event_id}")
    assert pushed.returncode == 0, pushed.stderr
    assert _ls(url) == {f"refs/nostr/{event_id}": tip}


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/nostr/not-a-valid-event-id"])
def test_grasp06_l15_pushes_to_any_other_ref_are_refused(grasp: Grasp, tmp_path, ref):
    """L15 MUST: anything but ``refs/nostr/<64-hex>`` is refused — by the validator, with a
    reason, not by a missing endpoint."""
    url = grasp.prs_url(Key(), fresh())
    work = _work(tmp_path)
    work.commit(branch="pr")
    refused = push(work.path, url, f"pr:{ref}")
    assert refused.returncode != 0
    assert "take only refs/nostr/<event-id>" in refused.stderr
    assert "not found" not in refused.stderr.lower()


def test_grasp06_l21_24_contributor_pr_end_to_end(grasp: Grasp, tmp_path):
    """L21-24, the must-show flow: a contributor with no announcement pushes to
    ``/prs/<their npub>/<id>.git``, publishes the 1618 naming it, the PR is served and
    ``refs/nostr/<event-id>`` appears in the maintainer's repository — never the other way."""
    maintainer, contributor, d = Key(), Key(), fresh()
    grasp.served_repository(maintainer, d)
    url = grasp.prs_url(contributor, d)
    work = _work(tmp_path)
    tip = work.commit(branch="pr")
    event = _pr(grasp, contributor, maintainer.pubkey, d, tip, url)
    assert push(work.path, url, f"pr:refs/nostr/{event.id}").returncode == 0
    assert grasp.publish(event)[2:] == [True, ""]
    assert grasp.served(event.id)
    maintainers = grasp.clone_url(maintainer, d)
    assert wait_until(lambda: _ls(maintainers).get(f"refs/nostr/{event.id}"), "mirror") == tip
    # the other way: a PR pushed to the announced repository stays out of /prs/
    other = Key().pubkey
    assert push(work.path, maintainers, f"pr:refs/nostr/{other}").returncode == 0
    assert f"refs/nostr/{other}" not in _ls(url)


def test_grasp06_l21_24_wrong_signer_ref_and_commit_are_refused_with_reasons(grasp, tmp_path):
    maintainer, alice, bob, d = Key(), Key(), Key(), fresh()
    grasp.served_repository(maintainer, d)
    work = _work(tmp_path)
    announced, other = work.commit(), work.commit(branch="other")
    alices = grasp.prs_url(alice, d)
    forged = grasp.publish(_pr(grasp, bob, maintainer.pubkey, d, announced, alices))
    assert forged[2] is False and forged[3].startswith("invalid: GRASP-06: ")
    assert "signed by another key" in forged[3]
    wrong_ref = push(work.path, alices, "other:refs/heads/main")
    assert wrong_ref.returncode != 0 and "take only refs/nostr/<event-id>" in wrong_ref.stderr
    event = _pr(grasp, alice, maintainer.pubkey, d, announced, alices)
    assert grasp.publish(event)[3].startswith("purgatory: PR held until commit")
    wrong_commit = push(work.path, alices, f"other:refs/nostr/{event.id}")
    assert wrong_commit.returncode != 0
    assert f"names commit {announced}, not {other}" in wrong_commit.stderr
    bobs_path = push(work.path, grasp.prs_url(bob, d), f"{announced}:refs/nostr/{event.id}")
    assert bobs_path.returncode != 0 and "signed by another key" in bobs_path.stderr
    assert not grasp.served(event.id)


def test_grasp06_l21_24_a_pr_for_a_repository_hosted_elsewhere_is_accepted(grasp, tmp_path):
    """L21 MUST: the PR names an announcement this relay does not have (GRASP-01 would refuse
    it); its ``clone`` names the signer's ``/prs/`` path here, so it is held, then served."""
    elsewhere, contributor, d = Key(), Key(), fresh()
    url = grasp.prs_url(contributor, d)
    work = _work(tmp_path)
    tip = work.commit(branch="pr")
    event = _pr(grasp, contributor, elsewhere.pubkey, d, tip, url)
    assert grasp.publish(event)[3].startswith("purgatory: PR held until commit")
    assert push(work.path, url, f"pr:refs/nostr/{event.id}").returncode == 0
    wait_until(lambda: grasp.served(event.id), "the PR served")


def test_grasp06_l23_without_a_prs_clone_tag_grasp01_applies(grasp: Grasp):
    """L23 MUST: the relaxation holds only when ``clone`` names this relay's ``/prs/``."""
    elsewhere, contributor, d = Key(), Key(), fresh()
    event = _pr(grasp, contributor, elsewhere.pubkey, d, "a" * 40, "https://x.example/r.git")
    refused = grasp.publish(event)
    assert refused[2:] == [
        False,
        "invalid: pull request does not reference a repository on this relay",
    ]


def test_grasp06_a_mismatched_commit_pushed_first_loses_its_ref(grasp: Grasp, tmp_path):
    """The pushed commit differs from the signed event's ``c``: the ref is deleted, the event
    stays held (not served), the emptied ``/prs/`` repository is gone."""
    contributor, d = Key(), fresh()
    url = grasp.prs_url(contributor, d)
    work = _work(tmp_path)
    work.commit(branch="wrong")
    event = _pr(grasp, contributor, Key().pubkey, d, "b" * 40, url)
    assert push(work.path, url, f"wrong:refs/nostr/{event.id}").returncode == 0
    assert grasp.publish(event)[3].startswith("purgatory: PR held until commit")
    assert _ls(url) == {}
    assert not grasp.served(event.id)
    assert not (
        grasp.process.data_dir / "prs" / npub_encode(contributor.pubkey) / f"{d}.git"
    ).exists()


def test_grasp06_not_advertised_means_404(curated: Grasp, grasp: Grasp):
    """Advertised in NIP-11 ``supported_grasps`` exactly when on; off, ``/prs/`` is 404."""
    assert "GRASP-06" in grasp.nip11()["supported_grasps"]
    assert "GRASP-06" not in curated.nip11()["supported_grasps"]
    probe = curated.prs_url(Key(), fresh()) + "/info/refs?service=git-upload-pack"
    assert http("GET", probe).status == 404
