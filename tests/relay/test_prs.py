"""GRASP-06 contributor PRs (S16.1) over real git: ``/prs/<npub>/<identifier>.git`` served and
pushed to with the git CLI, PR events through the real write policy, release through the real
workflow (the recording sync port runs it in the test's greenlet, as in test_git_http.py).
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest
from gevent.pywsgi import WSGIServer

from grasp.admission.intake import EventSource
from grasp.admission.write_policy import GraspWritePolicy
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import sign_event
from grasp.relay.git_service.prs import ContributorRepositories
from grasp.relay.git_service.service import SERVE_CONFIG, GitService
from grasp.relay.transport.http import PRS_MOUNT, RelayApp, git_repository_path
from tests.admission.test_write_policy import RecordingSync
from tests.support.gitrepo import RepoBuilder, for_each_ref, git
from tests.support.nip34 import Key
from tests.support.wait import wait_for

DOMAIN = "relay.example"
D = "project"
USER = EventSource.CLIENT


class Sync(RecordingSync):
    def git_data_arrived(self, identifier):
        super().git_data_arrived(identifier)
        self.world.workflow.process(identifier)


@dataclass
class Prs:
    world: object
    repos: ContributorRepositories
    policy: GraspWritePolicy
    base: str

    def url(self, key: Key, d: str = D) -> str:
        return f"{self.base}/prs/{npub_encode(key.pubkey)}/{d}.git"

    def clone_tag(self, key: Key, d: str = D) -> str:
        """The clone URL as the PR names it: this relay's public authority."""
        return f"https://{DOMAIN}/prs/{npub_encode(key.pubkey)}/{d}.git"

    def owner_url(self, key: Key, d: str = D) -> str:
        return f"{self.base}/{npub_encode(key.pubkey)}/{d}.git"


def _relay_app(world, repos, sync):
    """The relay's routing: the GitService and, mounted at /prs, the GRASP-06 repositories."""
    git_service = GitService(world.index, world.store, world.purgatory, sync, domain=DOMAIN)
    app = RelayApp(
        info={}, session_factory=lambda c: None, mounts={git_repository_path: git_service.app()}
    )
    app.mount(PRS_MOUNT, repos.app())
    return app


@pytest.fixture
def prs(world, tmp_path):
    sync = Sync(world)
    repos = ContributorRepositories(
        world.data_dir,
        DOMAIN,
        world.store,
        world.purgatory,
        sync,
        serve_config=SERVE_CONFIG,
        max_placeholders_per_repo=2,
        max_placeholder_bytes=1 << 20,
    )
    world.workflow.pr_sources = repos.sources
    policy = GraspWritePolicy(
        domain=DOMAIN,
        index=world.index,
        store=world.store,
        purgatory=world.purgatory,
        sync=sync,
        notify=world.notified.append,
        prs=repos,
    )
    server = WSGIServer(("127.0.0.1", 0), _relay_app(world, repos, sync), log=None, error_log=None)
    server.start()
    yield Prs(world, repos, policy, f"http://127.0.0.1:{server.server_port}")
    server.stop(timeout=5)


def _push(source, url, *refspecs):
    return subprocess.run(
        ["git", "--git-dir", str(source), "push", "--porcelain", url, *refspecs],
        capture_output=True,
        text=True,
    )


def _ls_remote(url):
    return subprocess.run(["git", "ls-remote", url], capture_output=True, text=True)


def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _released(prs, event):
    """The stored event, once the push's after-hook (run as the response closes) released it."""
    return wait_for(lambda: prs.world.store.get(event.id), message=f"PR {event.id} released")


def _pr(prs, contributor, maintainer, commit, *, clone=None, signer=None, d=D):
    signer = signer or contributor
    tags = [
        ["a", f"30617:{maintainer.pubkey}:{d}"],
        ["c", commit],
        ["clone", clone or prs.clone_tag(contributor, d)],
        ["subject", "a contribution"],
    ]
    return sign_event(signer.secret, 1618, tags, "please pull")


# -- L13: any well-formed path is an empty repository until a ref is accepted ---------------


def test_grasp06_l13_any_well_formed_path_serves_an_empty_repository(prs, tmp_path):
    stranger = Key()
    clone = tmp_path / "clone"
    git("clone", "--quiet", prs.url(stranger, "never-seen-🚀"), clone)
    assert git("-C", clone, "for-each-ref").strip() == ""
    answer = urllib.request.urlopen(prs.url(stranger) + "/info/refs?service=git-upload-pack")
    assert b"allow-tip-sha1-in-want" in answer.read()  # the empty repo's capabilities (L56)
    for bad in ("/prs/npub1nope/x.git", f"/prs/{npub_encode(stranger.pubkey)}/%2e%2e.git"):
        assert _status(prs.base + bad + "/info/refs?service=git-upload-pack") == 404
    assert not (prs.world.data_dir / "prs" / npub_encode(stranger.pubkey)).exists()


# -- L15: only refs/nostr/<event-id> ---------------------------------------------------------


def test_grasp06_l15_a_push_to_refs_nostr_is_accepted_and_then_served(prs, tmp_path):
    contributor = Key()
    work = RepoBuilder.create(tmp_path / "work.git")
    tip = work.commit(branch="pr")
    event_id = "ab" * 32
    pushed = _push(work.path, prs.url(contributor), f"pr:refs/nostr/{event_id}")
    assert pushed.returncode == 0, pushed.stderr
    assert f"refs/nostr/{event_id}" in _ls_remote(prs.url(contributor)).stdout
    assert wait_for(lambda: prs.world.purgatory.placeholder_commit(event_id)) == tip


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/nostr/not-a-valid-event-id"])
def test_grasp06_l15_pushes_to_any_other_ref_are_refused_with_a_reason(prs, tmp_path, ref):
    contributor = Key()
    work = RepoBuilder.create(tmp_path / "work.git")
    work.commit(branch="pr")
    pushed = _push(work.path, prs.url(contributor), f"pr:{ref}")
    assert pushed.returncode != 0
    assert "take only refs/nostr/<event-id>" in pushed.stderr
    assert not (prs.world.data_dir / "prs" / npub_encode(contributor.pubkey)).exists()


def test_placeholder_bounds_are_those_of_refs_nostr(prs, tmp_path):
    contributor = Key()
    work = RepoBuilder.create(tmp_path / "work.git")
    work.commit(branch="pr")
    for n in range(2):
        assert _push(work.path, prs.url(contributor), f"pr:refs/nostr/{n:064x}").returncode == 0
    third = _push(work.path, prs.url(contributor), f"pr:refs/nostr/{9:064x}")
    assert third.returncode != 0 and "at most 2 refs/nostr/ refs of unknown events" in third.stderr
    big = RepoBuilder.create(tmp_path / "big.git")
    big.commit(branch="pr", files={"blob.txt": os.urandom(3 << 19).hex()})  # > 1.5 MiB packed
    other = Key()
    refused = _push(big.path, prs.url(other), f"pr:refs/nostr/{1:064x}")
    assert refused.returncode != 0 and "allowed for refs/nostr/ refs" in refused.stderr


# -- L21-24 and the mirror -----------------------------------------------------------------


def test_grasp06_push_first_then_the_pr_is_served_and_mirrored(prs, tmp_path):
    """The must-show flow: a contributor without an announcement pushes to their /prs/ path,
    publishes the 1618, the PR is served and refs/nostr/<id> appears in the maintainer's repo."""
    maintainer, contributor = Key(), Key()
    prs.world.announce(maintainer, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    tip = work.commit(branch="pr")
    event = _pr(prs, contributor, maintainer, tip)
    assert _push(work.path, prs.url(contributor), f"pr:refs/nostr/{event.id}").returncode == 0
    result = prs.policy(event, USER)
    assert (result.accepted, result.message) == (True, "")
    assert prs.world.store.get(event.id) == event
    assert for_each_ref(prs.world.repo(maintainer, D)) == {f"refs/nostr/{event.id}": tip}
    assert f"refs/nostr/{event.id}" in _ls_remote(prs.owner_url(maintainer)).stdout


def test_grasp06_pr_first_then_the_push_releases_it(prs, tmp_path):
    maintainer, contributor = Key(), Key()
    prs.world.announce(maintainer, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    tip = work.commit(branch="pr")
    event = _pr(prs, contributor, maintainer, tip)
    assert prs.policy(event, USER).message.startswith("purgatory: PR held until commit")
    assert _push(work.path, prs.url(contributor), f"pr:refs/nostr/{event.id}").returncode == 0
    assert _released(prs, event) == event
    assert for_each_ref(prs.world.repo(maintainer, D))[f"refs/nostr/{event.id}"] == tip


def test_grasp06_l21_a_pr_for_a_repository_hosted_elsewhere_is_accepted(prs, tmp_path):
    """L21-24: GRASP-01 would refuse it (no accepted announcement here); the /prs/ clone tag
    makes it acceptable. L23: without that tag the GRASP-01 rule applies."""
    elsewhere, contributor = Key(), Key()
    work = RepoBuilder.create(tmp_path / "work.git")
    tip = work.commit(branch="pr")
    event = _pr(prs, contributor, elsewhere, tip)
    assert prs.policy(event, USER).message.startswith("purgatory: PR held until commit")
    assert _push(work.path, prs.url(contributor), f"pr:refs/nostr/{event.id}").returncode == 0
    assert _released(prs, event) == event  # served; no repository here to mirror into
    plain = _pr(prs, contributor, elsewhere, tip, clone="https://elsewhere.example/x.git")
    refused = prs.policy(plain, USER)
    assert refused.message == "invalid: pull request does not reference a repository on this relay"


def test_grasp06_wrong_signer_is_refused_with_a_reason(prs, tmp_path):
    maintainer, alice, bob = Key(), Key(), Key()
    prs.world.announce(maintainer, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    tip = work.commit(branch="pr")
    forged = _pr(prs, alice, maintainer, tip, signer=bob)  # names alice's /prs/, signed by bob
    refused = prs.policy(forged, USER)
    assert not refused.accepted and refused.message.startswith("invalid: GRASP-06: ")
    assert "signed by another key" in refused.message
    bobs = _pr(prs, bob, maintainer, tip)
    assert prs.policy(bobs, USER).accepted
    into_alice = _push(work.path, prs.url(alice), f"pr:refs/nostr/{bobs.id}")
    assert into_alice.returncode != 0
    assert f"signed by another key than {npub_encode(alice.pubkey)}" in into_alice.stderr
    mismatch = _pr(prs, alice, maintainer, tip, clone=prs.clone_tag(alice, "other"))
    assert "names identifier 'other'" in prs.policy(mismatch, USER).message


def test_grasp06_wrong_commit_is_refused_at_push_time(prs, tmp_path):
    maintainer, contributor = Key(), Key()
    prs.world.announce(maintainer, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    announced, other = work.commit(), work.commit(branch="other")
    event = _pr(prs, contributor, maintainer, announced)
    prs.policy(event, USER)
    pushed = _push(work.path, prs.url(contributor), f"other:refs/nostr/{event.id}")
    assert pushed.returncode != 0 and f"names commit {announced}, not {other}" in pushed.stderr
    assert _ls_remote(prs.url(contributor)).stdout == ""
    assert prs.world.purgatory.contains(event.id) and not prs.world.store.get(event.id)


def test_grasp06_a_wrong_commit_pushed_first_loses_its_ref_to_the_signed_event(prs, tmp_path):
    maintainer, contributor = Key(), Key()
    prs.world.announce(maintainer, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    announced, _other = work.commit(), work.commit(branch="other")
    event = _pr(prs, contributor, maintainer, announced)
    assert _push(work.path, prs.url(contributor), f"other:refs/nostr/{event.id}").returncode == 0
    result = prs.policy(event, USER)
    assert result.accepted and result.message.startswith("purgatory: PR held until commit")
    assert _ls_remote(prs.url(contributor)).stdout == ""  # ref deleted, empty repo served
    assert not prs.repos.path_of(npub_encode(contributor.pubkey), D).exists()  # removed
    assert prs.world.purgatory.contains(event.id)  # held for the right commit
    fixed = _push(work.path, prs.url(contributor), f"{announced}:refs/nostr/{event.id}")
    assert fixed.returncode == 0, fixed.stderr
    assert _released(prs, event) == event


def test_grasp06_never_mirrors_the_other_way(prs, tmp_path):
    maintainer, contributor = Key(), Key()
    prs.world.announce(maintainer, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    work.commit(branch="pr")
    event_id = "cd" * 32
    assert _push(work.path, prs.owner_url(maintainer), f"pr:refs/nostr/{event_id}").returncode == 0
    assert _ls_remote(prs.url(maintainer)).stdout == ""
    assert _ls_remote(prs.url(contributor)).stdout == ""


def test_expired_placeholders_lose_their_refs_and_emptied_repositories_go(prs, tmp_path):
    contributor = Key()
    work = RepoBuilder.create(tmp_path / "work.git")
    work.commit(branch="pr")
    event_id = "ef" * 32
    assert _push(work.path, prs.url(contributor), f"pr:refs/nostr/{event_id}").returncode == 0
    assert prs.repos.forget(["00" * 32]) == 0
    assert prs.repos.forget([event_id]) == 1
    assert not prs.repos.path_of(npub_encode(contributor.pubkey), D).exists()
    assert _ls_remote(prs.url(contributor)).stdout == ""


def test_without_grasp06_prs_urls_mean_nothing(world, tmp_path):
    policy = GraspWritePolicy(
        domain=DOMAIN,
        index=world.index,
        store=world.store,
        purgatory=world.purgatory,
        sync=RecordingSync(world),
        notify=world.notified.append,
    )
    elsewhere, contributor = Key(), Key()
    tags = [
        ["a", f"30617:{elsewhere.pubkey}:{D}"],
        ["c", "a" * 40],
        ["clone", f"https://{DOMAIN}/prs/{npub_encode(contributor.pubkey)}/{D}.git"],
    ]
    event = sign_event(contributor.secret, 1618, tags, "pr")
    assert policy(event, USER).message.startswith("invalid: pull request does not reference")
