"""The relay's git smart HTTP: serving, push authorisation, placeholders, traversal (S10.5, S10.6).

The GitService runs behind a real gevent WSGI server on 127.0.0.1:0; clients are the real git
CLI (protocol v0 and v2) and dulwich. The sync side is the recording stand-in of the policy
tests, whose ``git_data_arrived`` runs the real release workflow.
"""

import os
import subprocess
import urllib.request

import pytest
from gevent.pywsgi import WSGIServer

from grasp.nostr.bech32 import npub_encode
from grasp.relay.git_service.placeholder_quota import PlaceholderLimits
from grasp.relay.git_service.service import GitService
from tests.admission.test_write_policy import RecordingSync
from tests.support.gitrepo import (
    RepoBuilder,
    for_each_ref,
    git,
    objects_listing,
    symbolic_head,
)
from tests.support.nip34 import Key
from tests.support.wait import wait_for

D = "repo"


class Sync(RecordingSync):
    def git_data_arrived(self, identifier):
        super().git_data_arrived(identifier)
        self.world.workflow.process(identifier)


@pytest.fixture
def serve(world):
    """``serve(limits=None)`` starts a GitService over the world; all stop at teardown."""
    servers = []

    def start(limits=None):
        sync = Sync(world)
        service = GitService(world.index, world.store, world.purgatory, sync, limits=limits)
        server = WSGIServer(("127.0.0.1", 0), service.app(), log=None, error_log=None)
        server.start()
        servers.append(server)
        return service, sync, f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.stop(timeout=5)


@pytest.fixture
def served(serve):
    return serve()


def _url(base, key, d=D):
    return f"{base}/{npub_encode(key.pubkey)}/{d}.git"


def _push(source, url, *refspecs, protocol="2"):
    return subprocess.run(
        [
            "git",
            "--git-dir",
            str(source),
            "-c",
            f"protocol.version={protocol}",
            "push",
            "--porcelain",
            url,
            *refspecs,
        ],
        capture_output=True,
        text=True,
    )


def test_push_of_exactly_a_held_state_lands_and_releases_it(world, served, tmp_path):
    service, sync, base = served
    owner = Key()
    world.announce(owner, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    main = work.chain(2, branch="main")[-1]
    tag = work.tag("v1", main)
    state = world.hold_state(owner.state(D, {"refs/heads/main": main, "refs/tags/v1": tag}))
    pushed = _push(
        work.path, _url(base, owner), "refs/heads/main:refs/heads/main", "refs/tags/v1:refs/tags/v1"
    )
    assert pushed.returncode == 0, pushed.stderr
    repo = world.repo(owner, D)
    assert for_each_ref(repo) == {"refs/heads/main": main, "refs/tags/v1": tag}
    assert symbolic_head(repo) == "refs/heads/main"
    assert sync.arrived == [D] and world.notified_ids == [state.event.id]


def test_push_that_matches_no_state_is_refused_with_a_reason_git_prints(world, served, tmp_path):
    service, sync, base = served
    owner = Key()
    world.announce(owner, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    a, b = work.chain(2, branch="main")
    world.hold_state(owner.state(D, {"refs/heads/main": a}))
    pushed = _push(work.path, _url(base, owner), "refs/heads/main:refs/heads/main")
    assert pushed.returncode != 0
    assert "push does not match any authorised repository state" in pushed.stderr
    assert "refs/heads/main would be at" in pushed.stderr
    assert for_each_ref(world.repo(owner, D)) == {} and sync.arrived == []


def test_push_for_a_strangers_state_is_refused(world, served, tmp_path):
    service, sync, base = served
    owner, stranger = Key(), Key()
    world.announce(owner, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    main = work.commit(branch="main")
    world.hold_state(stranger.state(D, {"refs/heads/main": main}))
    pushed = _push(work.path, _url(base, owner), "refs/heads/main:refs/heads/main")
    assert pushed.returncode != 0 and "no repository state" in pushed.stderr


def test_nostr_ref_placeholder_then_pr_event_is_served(world, served, tmp_path):
    """S1.3: a push to refs/nostr/<id> before the PR event leaves a placeholder."""
    service, sync, base = served
    owner, contributor = Key(), Key()
    world.announce(owner, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    tip = work.commit(branch="pr")
    event = contributor.pr(owner.pubkey, D, tip)
    pushed = _push(work.path, _url(base, owner), f"refs/heads/pr:refs/nostr/{event.id}")
    assert pushed.returncode == 0, pushed.stderr
    assert world.purgatory.placeholder_commit(event.id) == tip
    assert for_each_ref(world.repo(owner, D)) == {f"refs/nostr/{event.id}": tip}


def test_pr_event_then_push_of_another_commit_is_refused(world, served, tmp_path):
    service, sync, base = served
    owner, contributor = Key(), Key()
    world.announce(owner, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    announced, _other = work.commit(), work.commit(branch="pr")
    pr = world.hold_pr(contributor.pr(owner.pubkey, D, announced))
    pushed = _push(work.path, _url(base, owner), f"refs/heads/pr:refs/nostr/{pr.event_id}")
    assert pushed.returncode != 0
    assert f"names commit {announced}" in pushed.stderr


@pytest.mark.parametrize("ref", ["refs/nostr/not-an-id", "refs/notes/commits", "refs/pull/1/head"])
def test_other_refs_are_refused(world, served, tmp_path, ref):
    service, sync, base = served
    owner = Key()
    world.announce(owner, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    work.commit(branch="x")
    pushed = _push(work.path, _url(base, owner), f"refs/heads/x:{ref}")
    assert pushed.returncode != 0 and "remote:" in pushed.stderr


@pytest.mark.parametrize("protocol", ["0", "2"])
def test_clone_and_fetch_an_unadvertised_reachable_oid(world, served, tmp_path, protocol):
    service, sync, base = served
    owner = Key()
    world.announce(owner, D)
    repo = RepoBuilder(world.repo(owner, D))
    old, new = repo.chain(2, branch="main")
    clone = tmp_path / f"clone-v{protocol}.git"
    git(
        "-c", f"protocol.version={protocol}", "clone", "--bare", "--quiet", _url(base, owner), clone
    )
    assert for_each_ref(clone)["refs/heads/main"] == new
    fresh = tmp_path / f"fresh-v{protocol}.git"
    git("init", "--bare", "--quiet", fresh)
    git(
        "-c",
        f"protocol.version={protocol}",
        "fetch",
        "--quiet",
        _url(base, owner),
        old,
        git_dir=fresh,
    )
    assert git("cat-file", "-t", old, git_dir=fresh).strip() == "commit"


def test_dulwich_client_fetches_too(world, served, tmp_path):
    from dulwich.client import get_transport_and_path
    from dulwich.repo import Repo

    service, sync, base = served
    owner = Key()
    world.announce(owner, D)
    tip = RepoBuilder(world.repo(owner, D)).chain(3, branch="main")[-1]
    target = Repo.init_bare(str(tmp_path / "d.git"), mkdir=True)
    client, path = get_transport_and_path(_url(base, owner))
    result = client.fetch(path, target)
    assert result.refs[b"refs/heads/main"] == tip.encode()
    assert tip.encode() in target.object_store
    target.close()


def test_held_announcements_are_served_and_unknown_ones_are_404(world, served):
    service, sync, base = served
    held, stranger = Key(), Key()
    world.announce(held, D, held=True)
    assert _status(f"{_url(base, held)}/info/refs?service=git-upload-pack") == 200
    assert _status(f"{_url(base, stranger)}/info/refs?service=git-upload-pack") == 404


@pytest.mark.parametrize(
    "path",
    [
        "/{npub}/..%2F..%2Fevents.sqlite3/info/refs",
        "/{npub}/%2e%2e.git/info/refs",
        "/{npub}/../{npub}/repo.git/info/refs",
        "/npub1notanpubatall/repo.git/info/refs",
        "//etc/passwd.git/info/refs",
        "/{npub}/repo.git/../../../events.sqlite3",
        "/{npub}/repo%2Fx.git/info/refs",
    ],
)
def test_path_tricks_are_404_and_read_nothing_outside(world, served, path):
    service, sync, base = served
    owner = Key()
    world.announce(owner, D)
    url = base + path.format(npub=npub_encode(owner.pubkey)) + "?service=git-upload-pack"
    assert _status(url) == 404


def test_s14_3_placeholders_per_repository_are_capped(world, serve, tmp_path):
    service, sync, base = serve(PlaceholderLimits(max_per_repo=2))
    owner, other = Key(), Key()
    world.announce(owner, D)
    world.announce(other, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    ids = [f"{n:064x}" for n in range(1, 4)]
    for event_id in ids[:2]:
        work.commit(branch="x")
        assert _push(work.path, _url(base, owner), f"x:refs/nostr/{event_id}").returncode == 0
    work.commit(branch="x")
    refused = _push(work.path, _url(base, owner), f"x:refs/nostr/{ids[2]}")
    assert refused.returncode != 0
    assert "this repository already has 2 placeholders waiting" in refused.stderr
    # pushing an open placeholder again adds none; another repository has its own count
    assert _push(work.path, _url(base, owner), f"+x:refs/nostr/{ids[0]}").returncode == 0
    assert _push(work.path, _url(base, other), f"x:refs/nostr/{ids[2]}").returncode == 0
    assert world.purgatory.placeholders_in(owner.pubkey, D) == 2
    assert world.purgatory.placeholders_in(other.pubkey, D) == 1


def test_s14_3_the_pack_a_placeholder_push_brings_is_capped_before_receive_pack(
    world, serve, tmp_path
):
    service, sync, base = serve(PlaceholderLimits(max_bytes=256 * 1024))
    owner = Key()
    world.announce(owner, D)
    before = objects_listing(world.repo(owner, D))
    work = RepoBuilder.create(tmp_path / "work.git")
    work.commit(files={"big.bin": os.urandom(400 * 1024).hex()}, branch="x")  # ~400 KiB packed
    refused = _push(work.path, _url(base, owner), f"x:refs/nostr/{'ab' * 32}")
    assert refused.returncode != 0
    assert "may bring at most 262144 bytes of objects" in refused.stderr
    assert objects_listing(world.repo(owner, D)) == before
    assert world.purgatory.counts()["placeholder"] == 0


def test_s14_3_what_receive_pack_would_keep_is_capped_too(world, serve, tmp_path):
    """40 near-identical 64 KiB files: the pack sent is small (deltas), but fewer than 100
    objects are unpacked loose, 2.5 MiB of them. The body check lets it through; the
    pre-receive hook measures the quarantine and declines; nothing is kept."""
    service, sync, base = serve(PlaceholderLimits(max_bytes=1024 * 1024))
    owner = Key()
    world.announce(owner, D)
    before = objects_listing(world.repo(owner, D))
    work = RepoBuilder.create(tmp_path / "work.git")
    base_text = os.urandom(32 * 1024).hex()
    files = {f"copy{n}.txt": base_text + f"\nvariant {n}\n" for n in range(40)}
    work.commit(files=files, branch="x")
    refused = _push(work.path, _url(base, owner), f"x:refs/nostr/{'cd' * 32}")
    assert refused.returncode != 0, refused.stderr
    assert "may keep at most 1048576 bytes of new objects" in refused.stderr
    assert objects_listing(world.repo(owner, D)) == before
    assert for_each_ref(world.repo(owner, D)) == {}
    assert world.purgatory.counts()["placeholder"] == 0


def test_s14_3_pushes_that_add_no_placeholder_are_not_capped(world, serve, tmp_path):
    service, sync, base = serve(PlaceholderLimits(max_bytes=1024, max_per_repo=0))
    owner = Key()
    world.announce(owner, D)
    work = RepoBuilder.create(tmp_path / "work.git")
    main = work.commit(files={"big.bin": os.urandom(64 * 1024).hex()}, branch="main")
    world.hold_state(owner.state(D, {"refs/heads/main": main}))
    pushed = _push(work.path, _url(base, owner), "main:main")
    assert pushed.returncode == 0, pushed.stderr
    # the push ended: nothing in flight. The server ends it after the response (the release
    # of the held state runs first, after_receive_pack), so git may exit a moment before.
    wait_for(
        lambda: not service.pushes.busy(world.repo(owner, D)),
        timeout=10,
        message="the push is still in flight",
    )


def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
