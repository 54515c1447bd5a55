"""The GRASP-01 write policy over a real store, purgatory and repositories (S10.4, S1.2, S4.2).

The sync side is a recording stand-in (a leaf edge): ``release_now`` runs the real release
workflow in the test's greenlet, which is the single writer here.
"""

import pytest

from grasp.admission.intake import EventSource
from grasp.admission.write_policy import GraspWritePolicy
from grasp.git import set_nostr_ref
from grasp.nostr import kinds
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import sign_event
from grasp.nostr.filters import Filter
from tests.support.gitrepo import RepoBuilder, for_each_ref
from tests.support.nip34 import Key

DOMAIN = "relay.example"
D = "repo"
HELD = "purgatory: won't be served until git data arrives"
USER, SYNC = EventSource.CLIENT, EventSource.SYNC


class RecordingSync:
    def __init__(self, world):
        self.world = world
        self.enqueued: list[tuple[str, str]] = []
        self.arrived: list[str] = []

    def enqueue_sync(self, identifier, reason="user"):
        self.enqueued.append((identifier, reason))

    def git_data_arrived(self, identifier):
        self.arrived.append(identifier)

    def release_now(self, identifier, timeout=60.0):
        return self.world.workflow.process(identifier)


def _ours(key, d=D, **kwargs):
    npub = npub_encode(key.pubkey)
    return key.announcement(
        d, clone=[f"https://{DOMAIN}/{npub}/{d}.git"], relays=[f"wss://{DOMAIN}"], **kwargs
    )


def _served(world, event):
    return bool(world.store.query([Filter(ids={event.id})]))


def test_new_announcement_creates_the_repo_at_once_and_is_held(policy, world):
    owner = Key()
    event = _ours(owner)
    result = policy(event, USER)
    assert (result.accepted, result.message) == (True, HELD)
    assert world.repo(owner, D).is_dir()
    assert world.purgatory.announcement(owner.pubkey, D) is not None
    assert not _served(world, event)
    assert policy(event, USER).message == "duplicate: in purgatory"


def test_announcement_not_listing_us_is_blocked(policy, world):
    owner = Key()
    result = policy(owner.announcement(D, clone=["https://elsewhere.example/x.git"]), USER)
    assert not result.accepted and result.message.startswith("blocked: ")
    assert not (world.data_dir / "repos").exists()


def test_maintainer_announcement_is_stored_without_a_repo(policy, world):
    owner, maintainer = Key(), Key()
    world.announce(owner, D, maintainers=[maintainer.pubkey])
    event = maintainer.announcement(D, clone=["https://elsewhere.example/x.git"])
    result = policy(event, USER)
    assert (result.accepted, result.message) == (True, "")
    assert _served(world, event) and world.notified == [event]
    assert not world.index.repo_path(maintainer.pubkey, D).exists()


@pytest.mark.parametrize("identifier", ["..", ".", "a/b", "a\\b", ""])
def test_bad_identifiers_are_invalid(policy, identifier):
    result = policy(Key().announcement(identifier), USER)
    assert not result.accepted and result.message.startswith("invalid: ")


def test_state_without_objects_is_held_and_queued_with_the_user_delay(policy, world):
    owner = Key()
    world.announce(owner, D)
    event = owner.state(D, {"refs/heads/main": "a" * 40})
    result = policy(event, USER)
    assert (result.accepted, result.message) == (True, HELD)
    assert policy.sync_port.enqueued == [(D, "user")]  # S4.2: 180 s
    assert world.purgatory.contains(event.id) and not _served(world, event)
    synced = owner.state(D, {"refs/heads/main": "b" * 40}, created_at=1_700_000_999)
    assert policy(synced, SYNC).message == HELD
    assert policy.sync_port.enqueued[-1] == (D, "synced")  # S4.2: synced events go fast


def test_state_whose_objects_are_present_is_stored_at_once(policy, world):
    owner = Key()
    world.announce(owner, D)
    commit = RepoBuilder(world.repo(owner, D)).commit()
    event = owner.state(D, {"refs/heads/main": commit})
    result = policy(event, USER)
    assert (result.accepted, result.message) == (True, "")
    assert _served(world, event) and world.notified == [event]
    assert for_each_ref(world.repo(owner, D)) == {"refs/heads/main": commit}
    assert policy(event, USER).message == "duplicate: already have this event"


def test_state_refusals(policy, world):
    owner, stranger = Key(), Key()
    assert (
        policy(owner.state(D, {}), USER).message
        == "invalid: no announcement exists for this repository"
    )
    world.announce(owner, D)
    assert (
        policy(stranger.state(D, {}), USER).message
        == "invalid: author not authorized for this repository"
    )


def test_synced_state_that_expired_before_is_refused_but_a_user_may_resubmit(policy, world):
    owner = Key()
    world.announce(owner, D)
    event = owner.state(D, {"refs/heads/main": "a" * 40})
    policy(event, SYNC)
    world.clock.advance(world.purgatory.expiry_secs)
    world.purgatory.sweep()
    assert world.purgatory.is_expired(event.id)
    again = policy(event, SYNC)
    assert (again.accepted, again.message) == (
        False,
        "invalid: previously expired from purgatory without git data",
    )
    assert policy(event, USER).message == HELD


def test_pr_is_held_until_its_commit_arrives_then_a_placeholder_completes_it(policy, world):
    owner, contributor = Key(), Key()
    world.announce(owner, D)
    commit = RepoBuilder(world.repo(owner, D)).commit()
    missing = contributor.pr(owner.pubkey, D, "d" * 40)
    held = policy(missing, USER)
    assert held.message == f"purgatory: PR held until commit {'d' * 40} arrives: waiting for a push"
    # a push to refs/nostr/<id> came first: the placeholder has the same commit
    early = contributor.pr(owner.pubkey, D, commit, created_at=1_700_000_400)
    world.purgatory.add_placeholder(early.id, commit, owner.pubkey, D)
    assert policy(early, USER).message == ""
    assert for_each_ref(world.repo(owner, D))[f"refs/nostr/{early.id}"] == commit


def test_s1_2_a_held_pr_says_how_many_clone_urls_the_relay_will_fetch_from(world):
    """The count is what purgatory sync will try: the announcement's and the PR's clone URLs,
    without our own service and without what the fetch policy refuses (S3.1, S3.2, S3.4)."""
    owner, contributor = Key(), Key()
    npub = npub_encode(owner.pubkey)
    world.announce(
        owner,
        D,
        clone=[f"https://{DOMAIN}/{npub}/{D}.git", "https://forge.example/r.git", "git://x/r"],
    )
    policy = GraspWritePolicy(
        domain=DOMAIN,
        index=world.index,
        store=world.store,
        purgatory=world.purgatory,
        sync=RecordingSync(world),
        notify=world.notified.append,
        fetch_candidates=world.ctx.fetch_candidates,
    )
    world.ctx.domain = DOMAIN
    pr = contributor.pr(owner.pubkey, D, "e" * 40, clone=["https://fork.example/r.git"])
    assert policy(pr, USER).message == (
        f"purgatory: PR held until commit {'e' * 40} arrives: will fetch from 2 clone URLs"
    )


def _squatted(world, owner, event, commit):
    """Someone pushed refs/nostr/<event id> with ``commit`` before the signed event came."""
    repo = world.repo(owner, D)
    set_nostr_ref(repo, event.id, commit)
    world.purgatory.add_placeholder(event.id, commit, owner.pubkey, D)
    return repo


def test_s14_3_a_signed_pr_moves_the_ref_of_a_placeholder_of_another_commit(policy, world):
    owner, contributor = Key(), Key()
    world.announce(owner, D)
    builder = RepoBuilder(world.repo(owner, D))
    wanted, junk = builder.commit(), builder.commit(message="squatting")
    event = contributor.pr(owner.pubkey, D, wanted)
    repo = _squatted(world, owner, event, junk)
    assert policy(event, USER).message == ""  # stored: its commit is here
    assert for_each_ref(repo)[f"refs/nostr/{event.id}"] == wanted
    assert world.purgatory.counts()["placeholder"] == 0


def test_s14_3_a_signed_pr_deletes_a_squatted_ref_and_waits_for_its_commit(policy, world):
    owner, contributor = Key(), Key()
    world.announce(owner, D)
    junk = RepoBuilder(world.repo(owner, D)).commit(message="squatting")
    event = contributor.pr(owner.pubkey, D, "a" * 40)
    repo = _squatted(world, owner, event, junk)
    result = policy(event, USER)
    assert result.accepted and result.message.startswith("purgatory: PR held until commit")
    assert policy.sync_port.arrived == [D]  # the Releaser is told to clean up
    world.workflow.process(D)  # what the Releaser does with GitDataArrived
    assert f"refs/nostr/{event.id}" not in for_each_ref(repo)
    assert world.purgatory.pr(event.id) is not None  # held, waiting for its own commit


def test_pr_for_an_unknown_repository_is_invalid(policy, world):
    result = policy(Key().pr(Key().pubkey, D, "a" * 40), USER)
    assert result.message == "invalid: pull request does not reference a repository on this relay"


def test_related_events_need_an_accepted_announcement_or_event(policy, world):
    owner, someone = Key(), Key()
    world.announce(owner, D)
    issue = sign_event(someone.secret, kinds.ISSUE, [["a", f"30617:{owner.pubkey}:{D}"]], "bug")
    assert policy(issue, USER).message == ""
    reply = sign_event(someone.secret, kinds.COMMENT, [["E", issue.id]], "me too")
    assert policy(reply, USER).message == ""
    orphan = sign_event(someone.secret, kinds.ISSUE, [["a", f"30617:{someone.pubkey}:{D}"]], "x")
    assert policy(orphan, USER).message.startswith("blocked: ")
    assert policy(sign_event(someone.secret, 1, [], "hi"), USER).message.startswith(
        "blocked: kind 1 "
    )


def test_deletion_removes_held_events_of_the_same_author(policy, world):
    owner = Key()
    world.announce(owner, D)
    state = owner.state(D, {"refs/heads/main": "a" * 40})
    policy(state, USER)
    deletion = sign_event(owner.secret, kinds.DELETION, [["e", state.id]], "")
    assert policy(deletion, USER).message == ""
    assert not world.purgatory.contains(state.id)
    stranger_deletion = sign_event(Key().secret, kinds.DELETION, [["e", "f" * 64]], "")
    assert policy(stranger_deletion, USER).message.startswith("blocked: ")


def test_a_releaser_that_times_out_leaves_the_event_held_not_failed(policy, world):
    owner = Key()
    world.announce(owner, D)
    commit = RepoBuilder(world.repo(owner, D)).commit()

    def too_slow(identifier, timeout=60.0):
        raise TimeoutError("the Releaser is busy")

    policy.sync_port.release_now = too_slow
    event = owner.state(D, {"refs/heads/main": commit})
    assert policy(event, USER).message == HELD
    assert world.purgatory.contains(event.id)
    assert policy.sync_port.enqueued == [(D, "user")]  # S4.2: 180 s


@pytest.mark.parametrize("length", [252, 300, 10_000])
def test_s14_2_long_identifiers_are_invalid_before_any_repository_is_touched(
    policy, world, caplog, length
):
    owner = Key()
    long = "x" * length
    events = [
        _ours(owner, long),
        owner.state(long, {"refs/heads/main": "a" * 40}),
        Key().pr(owner.pubkey, long, "a" * 40),
    ]
    with caplog.at_level("DEBUG"):
        results = [policy(event, USER) for event in events]
    assert [r.message for r in results] == ["invalid: identifier too long (max 251 bytes)"] * 3
    assert not (world.data_dir / "repos").exists()
    assert not any(r.exc_info for r in caplog.records)  # no traceback: not our fault


def test_s14_2_the_longest_identifier_that_fits_is_accepted(policy, world):
    owner = Key()
    longest = "é" * 125 + "x"  # 251 bytes of UTF-8
    assert policy(_ours(owner, longest), USER).message == HELD
    assert world.index.repo_path(owner.pubkey, longest).is_dir()


def test_s14_2_ref_names_that_cannot_be_files_are_invalid(policy, world):
    owner = Key()
    world.announce(owner, D)
    component = owner.state(D, {"refs/heads/" + "b" * 251: "a" * 40})
    whole = owner.state(D, {"refs/heads/" + "/".join(["b" * 200] * 6): "a" * 40})
    assert policy(component, USER).message == (
        "invalid: ref name has a path component longer than 250 bytes"
    )
    assert policy(whole, USER).message == "invalid: ref name too long (max 1024 bytes)"


def test_s14_2_sha256_ids_are_invalid_not_an_error(policy, world):
    owner = Key()
    world.announce(owner, D)
    state = owner.state(D, {"refs/heads/main": "c" * 64})
    pr = Key().pr(owner.pubkey, D, "c" * 64)
    for event in (state, pr):
        message = policy(event, USER).message
        assert message.startswith("invalid: object id ") and "SHA-1" in message


def test_s14_2_a_fault_of_the_relay_is_error_and_logged_once_per_minute(policy, world, caplog):
    """A broken data directory (a file where an owner's directory belongs) is the relay's own
    fault: ``error:``, one line with its traceback, then silence for the window."""
    clock = iter([0.0, 1.0, 2.0, 61.0])
    policy.clock = lambda: next(clock)
    owner = Key()
    (world.data_dir / "repos").mkdir()
    (world.data_dir / "repos" / npub_encode(owner.pubkey)).write_text("not a directory")
    with caplog.at_level("DEBUG", logger="grasp.admission"):
        results = [policy(_ours(owner, f"r{n}"), USER) for n in range(4)]
    assert {r.message for r in results} == {"error: could not process the event"}
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(logged) == 2 and all(r.exc_info for r in logged)
    assert "(2 more since it was last logged)" in logged[1].getMessage()
