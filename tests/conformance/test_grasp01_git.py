"""GRASP-01 "Git smart HTTP service" lines (L34-L58), against a relay process with the git CLI.

Each test is named after the requirement line it proves (docs/conformance.rst lists them).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from grasp.nostr.bech32 import npub_encode
from tests.conformance.support import HELD, fresh, git, http, push, wait_until
from tests.support.gitrepo import RepoBuilder
from tests.support.nip34 import Key

pytestmark = pytest.mark.slow


def _refs(url: str) -> dict[str, str]:
    """The repository's refs as ``git ls-remote`` lists them (HEAD left out)."""
    listed = git("ls-remote", url)
    assert listed.returncode == 0, listed.stderr
    pairs = (line.split("\t") for line in listed.stdout.splitlines())
    return {ref: oid for oid, ref in pairs if ref.startswith("refs/")}


def _work(tmp_path: Path, name: str = "work.git") -> RepoBuilder:
    return RepoBuilder.create(tmp_path / name)


@pytest.mark.parametrize("name", ["plain", "émoji-🚀", "my repo"])
def test_grasp01_l34_smart_http_for_every_served_or_held_announcement(grasp, tmp_path, name):
    """L34 MUST: ``/<npub>/<identifier>.git`` for announcements served *or in purgatory*,
    UTF-8 identifiers included (percent-encoded once); 404 for anything else."""
    owner, d = Key(), f"{name}-{fresh()}"
    assert grasp.publish(grasp.announcement(owner, d))[2:] == [True, HELD]
    url = grasp.clone_url(owner, d)
    assert http("GET", url + "/info/refs?service=git-upload-pack").status == 200
    clone = tmp_path / "clone"
    cloned = git("clone", "--quiet", url, clone)
    assert cloned.returncode == 0, cloned.stderr
    work = _work(tmp_path)
    main = work.commit(branch="main")
    assert grasp.publish(owner.state(d, {"refs/heads/main": main}))[2:] == [True, HELD]
    assert push(work.path, url, "main:main").returncode == 0
    assert _refs(url)["refs/heads/main"] == main
    stranger = f"http://{grasp.domain}/{npub_encode(Key().pubkey)}/{quote(d)}.git"
    assert http("GET", stranger + "/info/refs?service=git-upload-pack").status == 404


def test_grasp01_l36_pushes_that_fully_align_with_an_authorised_held_state(grasp, tmp_path):
    """L36 MUST: a push is accepted when the refs after it equal a held state by someone in
    the owner's recursive maintainer set; anything else is refused with a reason."""
    owner, maintainer, stranger, d = Key(), Key(), Key(), fresh()
    grasp.publish(grasp.announcement(owner, d, maintainers=[maintainer.pubkey]))
    url = grasp.clone_url(owner, d)
    work = _work(tmp_path)
    a, b = work.chain(2, branch="main")
    dev = work.commit(branch="dev")
    assert grasp.publish(stranger.state(d, {"refs/heads/main": a}))[3].startswith("invalid: ")
    state = maintainer.state(d, {"refs/heads/main": b, "refs/heads/dev": dev})
    assert grasp.publish(state)[2:] == [True, HELD]
    partial = push(work.path, url, "main:main")  # dev missing: not fully aligned
    assert partial.returncode != 0
    assert "push does not match any authorised repository state" in partial.stderr
    full = push(work.path, url, "main:main", "dev:dev")
    assert full.returncode == 0, full.stderr
    assert _refs(url) == {"refs/heads/main": b, "refs/heads/dev": dev}


def test_grasp01_l39_receive_pack_releases_aligns_head_and_synchronises_others(grasp, tmp_path):
    """L39 MUST: once receive-pack succeeded: the state and its announcement are served, HEAD
    follows the state, and every other repository here for which the state is authoritative
    (another owner whose maintainer set holds the author) gets the same refs."""
    alice, bob, d = Key(), Key(), fresh()
    announcement = grasp.announcement(alice, d)
    grasp.publish(announcement)
    grasp.publish(grasp.announcement(bob, d, maintainers=[alice.pubkey]))
    work = _work(tmp_path)
    main, dev = work.commit(branch="main"), work.commit(branch="dev")
    state = alice.state(d, {"refs/heads/main": main, "refs/heads/dev": dev}, head="refs/heads/dev")
    assert grasp.publish(state)[2:] == [True, HELD]
    pushed = push(work.path, grasp.clone_url(alice, d), "main:main", "dev:dev")
    assert pushed.returncode == 0, pushed.stderr
    wait_until(lambda: grasp.served(state.id), "the state released")
    wait_until(lambda: grasp.served(announcement.id), "the announcement released")
    for owner in (alice, bob):
        assert _refs(grasp.clone_url(owner, d)) == {"refs/heads/main": main, "refs/heads/dev": dev}
        head = git("ls-remote", "--symref", grasp.clone_url(owner, d), "HEAD").stdout
        assert head.startswith("ref: refs/heads/dev\tHEAD"), head


def test_grasp01_l45_pushes_to_refs_nostr_and_the_purgatory_tip_check(grasp, tmp_path):
    """L45 MUST accept ``refs/nostr/<event-id>``; SHOULD refuse one whose event is held with
    another tip."""
    owner, contributor, d = Key(), Key(), fresh()
    grasp.publish(grasp.announcement(owner, d))
    url = grasp.clone_url(owner, d)
    work = _work(tmp_path)
    tip, announced = work.commit(branch="pr"), work.commit()
    work.commit(branch="other")
    early = contributor.pr(owner.pubkey, d, tip)
    assert push(work.path, url, f"pr:refs/nostr/{early.id}").returncode == 0
    assert grasp.publish(early)[2:] == [True, ""]  # the push came first: served at once
    late = contributor.pr(owner.pubkey, d, announced, created_at=1_700_000_900)
    assert grasp.publish(late)[3].startswith("purgatory: PR held until commit")
    refused = push(work.path, url, f"other:refs/nostr/{late.id}")
    assert refused.returncode != 0 and f"names commit {announced}" in refused.stderr
    assert f"refs/nostr/{late.id}" not in _refs(url)


def test_grasp01_l45_a_signed_pr_wins_over_an_earlier_wrong_commit_push(grasp, tmp_path):
    """L45 (S14.3): a push to ``refs/nostr/<id>`` made before the signed PR arrives does not
    make the event ``invalid:`` forever: the event is taken, and its own commit wins."""
    owner, contributor, d = Key(), Key(), fresh()
    grasp.publish(grasp.announcement(owner, d))
    url = grasp.clone_url(owner, d)
    work = _work(tmp_path)
    right = work.commit(branch="right")
    work.commit(branch="wrong")
    pr = contributor.pr(owner.pubkey, d, right)
    assert push(work.path, url, f"wrong:refs/nostr/{pr.id}").returncode == 0
    ok = grasp.publish(pr)
    assert ok[2] is True, ok
    fixed = push(work.path, url, f"+right:refs/nostr/{pr.id}")
    assert fixed.returncode == 0, fixed.stderr
    wait_until(lambda: grasp.served(pr.id), "the PR served")
    assert _refs(url)[f"refs/nostr/{pr.id}"] == right


def test_grasp01_l56_advertisement_carries_the_sha1_in_want_capabilities(grasp, tmp_path):
    """L56 MUST: ``allow-reachable-sha1-in-want`` and ``allow-tip-sha1-in-want`` in the
    advertisement — of a just-announced, empty repository too, whatever git the relay runs —
    and available objects served by id, to v0 and v2 clients."""
    owner, d = Key(), fresh()
    grasp.publish(grasp.announcement(owner, d))
    url = grasp.clone_url(owner, d)
    for headers in ({}, {"Git-Protocol": "version=2"}):
        body = http("GET", url + "/info/refs?service=git-upload-pack", headers=headers).data
        for capability in (b"allow-reachable-sha1-in-want", b"allow-tip-sha1-in-want", b"filter"):
            assert capability in body, (headers, body)
    work = _work(tmp_path)
    old, new = work.chain(2, branch="main")
    grasp.publish(owner.state(d, {"refs/heads/main": new}))
    assert push(work.path, url, "main:main").returncode == 0
    for protocol in ("0", "2"):
        target = tmp_path / f"fetch-v{protocol}.git"
        git("init", "--bare", "--quiet", target)
        fetched = git("-c", f"protocol.version={protocol}", "--git-dir", target, "fetch", url, old)
        assert fetched.returncode == 0, fetched.stderr
        assert git("--git-dir", target, "cat-file", "-t", old).stdout.strip() == "commit"


def test_grasp01_l58_a_webpage_at_the_endpoint_and_404_for_repositories_not_hosted(grasp):
    """L58 SHOULD: ``GET /<npub>/<identifier>.git`` is a page linking to nostr git clients;
    a repository not hosted here gets a 404 page."""
    owner, d = Key(), fresh()
    grasp.publish(grasp.announcement(owner, d))
    page = http("GET", grasp.clone_url(owner, d))
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.data.decode()
    assert 'href="https://gitworkshop.dev/naddr1' in text
    assert f"git clone {grasp.clone_url(owner, d)}" in text
    missing = http("GET", f"http://{grasp.domain}/{npub_encode(Key().pubkey)}/{d}.git")
    assert missing.status == 404 and missing.headers["Content-Type"].startswith("text/html")
