"""The GRASP relay as a separate process through its own CLI (issues 5 and 6, must-show).

Purgatory over the wire (S1.2), GRASP-01 refusals (S10.4), persistence across SIGTERM (S9.1),
SIGUSR1, and git smart HTTP against the process: push authorisation (S10.6), clone and fetch
with protocol v0/v2 and dulwich (S10.5), path tricks. The relay's public domain is fixed with
``--domain`` so restarts keep clone URLs stable.
"""

import itertools
import json
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from grasp.git import copy_objects
from grasp.nostr.bech32 import npub_encode
from tests.support.gitrepo import RepoBuilder, for_each_ref, git, symbolic_head
from tests.support.nip34 import Key
from tests.support.relay import RelayClient, RelayProcess
from tests.support.wait import wait_for

DOMAIN = "grasp.test"
D = "project"
HELD = "purgatory: won't be served until git data arrives"

pytestmark = pytest.mark.slow
_names = itertools.count()


@pytest.fixture(autouse=True)
def _fresh_identifier(monkeypatch):
    """Tests share one relay; each gets its own repository identifier (and fresh keys)."""
    monkeypatch.setitem(globals(), "D", f"project-{next(_names)}")


def _start(tmp_path, *args, name="relay"):
    return RelayProcess(tmp_path / name, "--domain", DOMAIN, "--allow-private-fetch", *args).start()


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    """One relay for the module: every test uses fresh keys, so tests cannot see each other."""
    root = tmp_path_factory.mktemp("grasp-process")
    process = _start(root, "--sync-default-delay-secs", "0.3")
    yield process
    process.stop()


def _ours(key, d=None, **kwargs):
    d = d or D
    npub = npub_encode(key.pubkey)
    return key.announcement(
        d, clone=[f"http://{DOMAIN}/{npub}/{d}.git"], relays=[f"ws://{DOMAIN}"], **kwargs
    )


def _repo(relay, key):
    return relay.data_dir / "repos" / npub_encode(key.pubkey) / f"{D}.git"


def _git_url(relay, key):
    return f"{relay.http_url}/{npub_encode(key.pubkey)}/{D}.git"


def _status(relay):
    with urllib.request.urlopen(f"{relay.http_url}/status.json", timeout=5) as response:
        return json.load(response)


def test_held_state_is_not_served_until_its_data_arrives_then_goes_live(relay, tmp_path):
    """S1.2: exact purgatory message, not served; the objects land in the repository through
    the git layer, the scheduled sync releases the state and live subscribers get it."""
    owner = Key()
    client, watcher = RelayClient(relay.ws_url), RelayClient(relay.ws_url)
    assert client.publish(_ours(owner))[2:] == [True, HELD]
    source = RepoBuilder.create(tmp_path / "source.git")
    commit = source.commit()
    state = owner.state(D, {"refs/heads/main": commit})
    watcher.send("REQ", "live", {"kinds": [30618]})
    assert watcher.recv() == ["EOSE", "live"]
    assert client.publish(state)[2:] == [True, HELD]
    assert client.req("now", {"ids": [state.id]}) == []
    client.send("CLOSE", "now")
    copy_objects(source.path, _repo(relay, owner), [commit])
    frame = watcher.recv()  # the release pushes it to the live subscription
    assert frame[0] == "EVENT" and frame[2]["id"] == state.id
    assert client.req("after", {"ids": [state.id]})[0]["id"] == state.id
    assert for_each_ref(_repo(relay, owner)) == {"refs/heads/main": commit}
    client.close(), watcher.close()


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda owner, stranger: owner.announcement(
                D, clone=["https://elsewhere.example/x.git"]
            ),
            "blocked: ",
        ),
        (lambda owner, stranger: _ours(owner, d=".."), "invalid: "),
        (
            lambda owner, stranger: stranger.state(D, {"refs/heads/main": "a" * 40}),
            "invalid: author not authorized for this repository",
        ),
    ],
    ids=["announcement-not-listing-us", "identifier-dotdot", "state-from-a-stranger"],
)
def test_grasp_refusals_over_the_wire_store_nothing(relay, make, message):
    owner, stranger = Key(), Key()
    client = RelayClient(relay.ws_url)
    client.publish(_ours(owner))
    event = make(owner, stranger)
    ok = client.publish(event)
    assert ok[2] is False and ok[3].startswith(message), ok
    assert client.req("x", {"ids": [event.id]}) == []
    assert client.publish(_ours(owner))[3] == "duplicate: in purgatory"  # still serving
    client.close()


def test_s9_1_sigterm_then_a_restart_requeues_held_events_from_the_database(tmp_path):
    """S9.1: held events survive a graceful restart and are back in the sync queue; nothing is
    written at shutdown (the event database already has them)."""
    relay = _start(tmp_path, "--sync-default-delay-secs", "600")
    owner = Key()
    client = RelayClient(relay.ws_url)
    client.publish(_ours(owner))
    state = owner.state(D, {"refs/heads/main": "a" * 40})
    assert client.publish(state)[3] == HELD
    client.close()
    assert relay.stop() == 0
    assert not (relay.data_dir / "purgatory-state.json").exists()
    again = _start(tmp_path)
    try:
        status = wait_for(
            lambda: (s := _status(again))["sync"]["queue_size"] == 1 and s,
            message="the restored identifier in the sync queue",
        )
        assert status["purgatory"]["counts"]["30618"] == 1
        assert [a["identifier"] for a in status["sync"]["next_attempts"]] == [D]
        client = RelayClient(again.ws_url)
        assert client.publish(state)[3] == "duplicate: in purgatory"
        client.close()
    finally:
        again.stop()


def test_sigusr1_logs_stacks_and_the_sync_queue(relay):
    relay.send_signal(signal.SIGUSR1)
    relay.wait_for_log("greenlets and stacks")
    relay.wait_for_log("sync queue: SchedulerStatus")


# -- git smart HTTP against the process (issue 6) ---------------------------------------------


def _push(source, url, *refspecs):
    return subprocess.run(
        ["git", "--git-dir", str(source), "push", url, *refspecs], capture_output=True, text=True
    )


def test_push_of_the_held_state_is_accepted_and_served(relay, tmp_path):
    owner = Key()
    client = RelayClient(relay.ws_url)
    client.publish(_ours(owner))
    work = RepoBuilder.create(tmp_path / "work.git")
    main, dev = work.chain(2, branch="main")[-1], work.commit(branch="dev")
    state = owner.state(D, {"refs/heads/main": main, "refs/heads/dev": dev}, head="refs/heads/dev")
    assert client.publish(state)[3] == HELD
    pushed = _push(work.path, _git_url(relay, owner), "main:main", "dev:dev")
    assert pushed.returncode == 0, pushed.stderr
    wait_for(lambda: client.req("s", {"ids": [state.id]}), message="the state served")
    repo = _repo(relay, owner)
    assert for_each_ref(repo) == {"refs/heads/main": main, "refs/heads/dev": dev}
    assert symbolic_head(repo) == "refs/heads/dev"
    assert wait_for(
        lambda: client.req("a", {"kinds": [30617], "authors": [owner.pubkey]}),
        message="the announcement promoted",
    )
    client.close()


def test_pushes_that_match_no_authorised_state_are_refused_with_a_reason(relay, tmp_path):
    owner = Key()
    client = RelayClient(relay.ws_url)
    client.publish(_ours(owner))
    work = RepoBuilder.create(tmp_path / "work.git")
    a, b = work.chain(2, branch="main")
    client.publish(owner.state(D, {"refs/heads/main": a}))
    refused = _push(work.path, _git_url(relay, owner), "main:main")
    assert (
        refused.returncode != 0
        and "push does not match any authorised repository state" in refused.stderr
    )
    client.close()
    # data for a state by a non-maintainer is refused too
    other = Key()
    client = RelayClient(relay.ws_url)
    client.publish(_ours(other))
    client.close()
    assert not _push(work.path, _git_url(relay, other), "main:main").returncode == 0
    assert for_each_ref(_repo(relay, owner)) == {}


def test_nostr_refs_placeholder_then_pr_and_pr_then_wrong_commit(relay, tmp_path):
    owner, contributor = Key(), Key()
    client = RelayClient(relay.ws_url)
    client.publish(_ours(owner))
    work = RepoBuilder.create(tmp_path / "work.git")
    tip = work.commit(branch="pr")
    early = contributor.pr(owner.pubkey, D, tip)
    assert _push(work.path, _git_url(relay, owner), f"pr:refs/nostr/{early.id}").returncode == 0
    assert client.publish(early)[2:] == [True, ""]  # the placeholder completes it at once
    assert client.req("pr", {"ids": [early.id]})[0]["id"] == early.id
    announced, _other = work.commit(), work.commit(branch="other")
    late = contributor.pr(owner.pubkey, D, announced, created_at=1_700_000_500)
    assert client.publish(late)[3] == (  # no other clone URL: a push is the only way (S1.2)
        f"purgatory: PR held until commit {announced} arrives: waiting for a push"
    )
    refused = _push(work.path, _git_url(relay, owner), f"other:refs/nostr/{late.id}")
    assert refused.returncode != 0 and f"names commit {announced}" in refused.stderr
    client.close()


@pytest.mark.parametrize("protocol", ["0", "2"])
def test_clone_and_fetch_unadvertised_reachable_oid_from_the_process(relay, tmp_path, protocol):
    owner = Key()
    client = RelayClient(relay.ws_url)
    client.publish(_ours(owner))
    work = RepoBuilder.create(tmp_path / "work.git")
    old, new = work.chain(2, branch="main")
    client.publish(owner.state(D, {"refs/heads/main": new}))
    assert _push(work.path, _git_url(relay, owner), "main:main").returncode == 0
    clone = tmp_path / "clone.git"
    git(
        "-c",
        f"protocol.version={protocol}",
        "clone",
        "--bare",
        "--quiet",
        _git_url(relay, owner),
        clone,
    )
    assert for_each_ref(clone)["refs/heads/main"] == new
    fresh = tmp_path / "fresh.git"
    git("init", "--bare", "--quiet", fresh)
    git(
        "-c",
        f"protocol.version={protocol}",
        "fetch",
        "--quiet",
        _git_url(relay, owner),
        old,
        git_dir=fresh,
    )
    assert git("cat-file", "-t", old, git_dir=fresh).strip() == "commit"
    from dulwich.client import get_transport_and_path
    from dulwich.repo import Repo

    target = Repo.init_bare(str(tmp_path / "dulwich.git"), mkdir=True)
    transport, path = get_transport_and_path(_git_url(relay, owner))
    assert transport.fetch(path, target).refs[b"refs/heads/main"] == new.encode()
    target.close()
    client.close()


@pytest.mark.parametrize(
    "path",
    [
        "/{npub}/..%2F..%2Fevents.sqlite3/info/refs",
        "/{npub}/%2e%2e.git/info/refs",
        "/{npub}/../../events.sqlite3",
        "/npub1nope/{d}.git/info/refs",
        "//etc/passwd.git/info/refs",
        "/{npub}/{d}%2Fx.git/info/refs",
    ],
)
def test_path_traversal_is_404_on_the_process(relay, path):
    owner = Key()
    client = RelayClient(relay.ws_url)
    client.publish(_ours(owner))
    client.close()
    url = (
        relay.http_url
        + path.format(npub=npub_encode(owner.pubkey), d=D)
        + "?service=git-upload-pack"
    )
    try:
        status = urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status == 404


def test_scripts_supervise_starts_in_order_and_stops_cleanly(tmp_path):
    """scripts/supervise: ordered, checked start (logged), SIGTERM → a clean stop, exit 0."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "supervise"
    process = RelayProcess(
        tmp_path / "supervised", "--domain", DOMAIN, "--log-level", "DEBUG", command=[str(script)]
    )
    process.start()
    try:
        steps = [
            "start 1/4: event store",
            "start 2/4: purgatory",
            "start 3/4: actors started",
            "relay serving",
            "started: 0 events stored",
        ]
        positions = [process.log.index(step) for step in steps]
        assert positions == sorted(positions)  # in this order
        assert "actors Supervisor, Releaser, Scheduler" in process.log
        client = RelayClient(process.ws_url)
        owner = Key()
        client.publish(_ours(owner))
        client.close()
    finally:
        assert process.stop() == 0
    assert "stopped: actors stopped, store closed (purgatory {'30617': 1" in process.log
    assert not (process.data_dir / "purgatory-state.json").exists()  # S9.1: the database has it
