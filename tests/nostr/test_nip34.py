"""NIP-34 models: announcements, states (S2.1), PRs (S2.2), identifiers (S10.4), maintainers
(S10.3)."""

import pytest

from grasp.nostr.event import public_key, sign_event
from grasp.nostr.nip34 import (
    Announcement,
    Nip34Error,
    PullRequest,
    RepositoryState,
    announcement_lookup,
    authorizing_owners,
    identifier_problem,
    is_valid_ref_name,
    latest_state,
    maintainer_set,
    validate_identifier,
)

ALICE, BOB, CAROL, DAVE = ("a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32)
C1, C2, C3, TAGOBJ = "1" * 40, "2" * 40, "3" * 40, "4" * 40


def _announcement(
    secret, d="repo", maintainers=(), clone=(("clone", "https://a/x.git"),), extra=()
):
    tags = [["d", d], *[list(c) for c in clone], *extra]
    if maintainers:
        tags.append(["maintainers", *[public_key(m) for m in maintainers]])
    return Announcement.from_event(sign_event(secret, 30617, tags, ""))


def test_announcement_fields():
    ann = Announcement.from_event(
        sign_event(
            ALICE,
            30617,
            [
                ["d", "repo"],
                ["name", "Repo"],
                ["description", "desc"],
                ["clone", "https://a/x.git", "https://b/x.git"],
                ["clone", "https://c/x.git", "https://a/x.git"],
                ["relays", "wss://a", "wss://b"],
                ["web", "https://a"],
                ["maintainers", public_key(BOB), "not-a-key"],
                ["maintainers", public_key(CAROL)],
            ],
            "",
        )
    )
    assert ann.identifier == "repo"
    assert ann.owner == public_key(ALICE)
    assert ann.clone_urls == ("https://a/x.git", "https://b/x.git", "https://c/x.git")
    assert ann.relays == ("wss://a", "wss://b")
    assert ann.maintainers == (public_key(BOB), public_key(CAROL))
    assert (ann.name, ann.description, ann.web) == ("Repo", "desc", ("https://a",))
    assert str(ann.address) == f"30617:{public_key(ALICE)}:repo"


def test_announcement_without_d_or_wrong_kind():
    with pytest.raises(Nip34Error, match="invalid: kind 30617 event has no 'd' tag"):
        Announcement.from_event(sign_event(ALICE, 30617, [["clone", "x"]], ""))
    with pytest.raises(Nip34Error, match="invalid: kind 1 is not a repository announcement"):
        Announcement.from_event(sign_event(ALICE, 1, [["d", "x"]], ""))


@pytest.mark.parametrize(
    "identifier, problem",
    [
        ("", "repository identifier is empty"),
        (".", "repository identifier '.' is not allowed"),
        ("..", "repository identifier '..' is not allowed"),
        ("a/b", "repository identifier contains '/'"),
        ("a\\b", "repository identifier contains a backslash"),
        ("a\x00b", "repository identifier contains a NUL character"),
        ("a:b", None),
        ("...", None),
        ("ünïcode repo", None),
    ],
)
def test_s10_4_identifier_validation(identifier, problem):
    assert identifier_problem(identifier) == problem
    if problem:
        with pytest.raises(Nip34Error) as info:
            validate_identifier(identifier)
        assert info.value.message == f"invalid: {problem}"
        with pytest.raises(Nip34Error):
            Announcement.from_event(sign_event(ALICE, 30617, [["d", identifier]], ""))
    else:
        assert validate_identifier(identifier) == identifier


def _state(secret, tags, d="repo", created_at=100):
    return RepositoryState.from_event(
        sign_event(secret, 30618, [["d", d], *tags], "", created_at=created_at)
    )


def test_s2_1_state_refs_peeled_and_symbolic():
    state = _state(
        ALICE,
        [
            ["refs/heads/main", C1],
            ["refs/heads/dev", "ref: refs/heads/main"],
            ["refs/tags/v1", TAGOBJ],
            ["refs/tags/v1^{}", C2],  # peeled: ignored everywhere
            ["refs/heads/main", C3],  # a repeated ref: the first wins
            ["refs/remotes/origin/x", C3],  # not a head or tag
            ["refs/heads/short"],  # no value
            ["HEAD", "ref: refs/heads/main"],
        ],
    )
    assert dict(state.refs) == {
        "refs/heads/main": C1,
        "refs/heads/dev": "ref: refs/heads/main",
        "refs/tags/v1": TAGOBJ,
    }
    assert state.needed_oids == {C1, TAGOBJ}
    assert state.branches == {"main": C1, "dev": "ref: refs/heads/main"}
    assert state.tags == {"v1": TAGOBJ}
    assert state.head == "refs/heads/main"
    assert state.author == public_key(ALICE)


@pytest.mark.parametrize(
    "value, head",
    [
        ("refs/heads/main", "refs/heads/main"),
        ("ref: refs/heads/a/b", "refs/heads/a/b"),
        ("ref: refs/tags/v1", None),
        ("ref: refs/heads/", None),
        ("", None),
        ("ref: refs/heads/../x", None),
    ],
)
def test_state_head_forms(value, head):
    assert _state(ALICE, [["refs/heads/main", C1], ["HEAD", value]]).head == head


def test_state_with_only_symbolic_or_no_refs_needs_nothing():
    assert _state(ALICE, []).needed_oids == frozenset()
    assert _state(ALICE, [["refs/heads/a", "ref: refs/heads/b"]]).needed_oids == frozenset()


@pytest.mark.parametrize(
    "tag, reason",
    [
        (["refs/heads/../../config", C1], "invalid ref"),
        (["refs/heads/a..b", C1], "invalid ref"),
        (["refs/heads/x.lock", C1], "invalid ref"),
        (["refs/heads/", C1], "invalid ref"),
        (["refs/heads/a b", C1], "invalid ref"),
        (["refs/heads/main", "XYZ"], "invalid value"),
        (["refs/heads/main", "AB" * 20], "invalid value"),
        (["refs/heads/main", C1[:39]], "invalid value"),
        (["refs/heads/main", "ref: ../x"], "invalid value"),
    ],
)
def test_state_refuses_what_git_would_misread(tag, reason):
    with pytest.raises(Nip34Error, match=reason):
        _state(ALICE, [tag])


def test_state_accepts_sha256_object_ids():
    assert _state(ALICE, [["refs/heads/main", "ab" * 32]]).needed_oids == {"ab" * 32}


def _pr(kind=1618, a_tags=None, c=C1, extra=()):
    a_tags = [f"30617:{public_key(ALICE)}:repo"] if a_tags is None else a_tags
    tags = [*[["a", a] for a in a_tags], *([["c", c]] if c else []), *extra]
    return PullRequest.from_event(sign_event(BOB, kind, tags, ""))


def test_s2_2_pr_commit_identifier_owners_clones():
    pr = _pr(
        a_tags=[
            "30000:" + ALICE + ":other",
            f"30617:{public_key(ALICE)}:repo",
            f"30617:{public_key(CAROL)}:fork",
        ],
        extra=[
            ["c", C2],
            ["clone", "https://x/r.git", "https://y/r.git"],
            ["clone", "https://z/r.git"],
        ],
    )
    assert pr.commit == C1  # the first c tag
    assert pr.identifier == "repo"  # the first 30617 a tag
    assert pr.owners == (public_key(ALICE), public_key(CAROL))
    assert pr.identifiers == ("repo", "fork")
    assert pr.references("fork") and pr.references("repo") and not pr.references("other")
    assert pr.clone_urls == ("https://x/r.git", "https://y/r.git", "https://z/r.git")
    assert _pr(kind=1619).event.kind == 1619


def test_s2_2_identifier_with_colons_is_kept_whole():
    """The original splits on every ':' and truncates;
    we split on the first two only (deviation)."""
    pr = _pr(a_tags=[f"30617:{public_key(ALICE)}:team:project:v2"])
    assert pr.identifier == "team:project:v2"


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"c": None}, "pull request has no 'c' tag"),
        ({"c": "nope"}, "not an object id"),
        ({"a_tags": []}, "names no repository"),
        ({"a_tags": ["30617:short:repo"]}, "names no repository"),
        ({"a_tags": [f"30617:{'ab' * 32}:../x"]}, "identifier contains '/'"),
        ({"kind": 1617}, "kind 1617 is not a pull request"),
    ],
)
def test_pr_rejections(kwargs, reason):
    with pytest.raises(Nip34Error, match=reason):
        _pr(**kwargs)


def _lookup(*announcements):
    return announcement_lookup(announcements)


def test_s10_3_maintainer_set_recursive_and_directional():
    lookup = _lookup(
        _announcement(ALICE, maintainers=[BOB]),
        _announcement(BOB, maintainers=[CAROL]),
        _announcement(DAVE, maintainers=[ALICE]),
        _announcement(CAROL, d="elsewhere", maintainers=[DAVE]),  # other identifier: not followed
    )
    alice, bob, carol, dave = (public_key(k) for k in (ALICE, BOB, CAROL, DAVE))
    assert maintainer_set(alice, "repo", lookup) == {alice, bob, carol}
    assert maintainer_set(bob, "repo", lookup) == {bob, carol}
    assert maintainer_set(dave, "repo", lookup) == {dave, alice, bob, carol}
    assert maintainer_set(carol, "repo", lookup) == {carol}
    assert maintainer_set(carol, "elsewhere", lookup) == {carol, dave}


def test_s10_3_maintainer_cycles_terminate():
    lookup = _lookup(
        _announcement(ALICE, maintainers=[BOB]),
        _announcement(BOB, maintainers=[CAROL]),
        _announcement(CAROL, maintainers=[ALICE, CAROL]),  # a cycle and a self-reference
    )
    everyone = {public_key(k) for k in (ALICE, BOB, CAROL)}
    for owner in everyone:
        assert maintainer_set(owner, "repo", lookup) == everyone


def test_authorizing_owners_keeps_order_and_only_matching_owners():
    lookup = _lookup(
        _announcement(ALICE, maintainers=[BOB]),
        _announcement(CAROL),
        _announcement(DAVE, maintainers=[BOB]),
    )
    alice, bob, carol, dave = (public_key(k) for k in (ALICE, BOB, CAROL, DAVE))
    owners = [dave, carol, alice, dave]
    assert authorizing_owners(bob, "repo", owners, lookup) == [dave, alice]
    assert authorizing_owners(carol, "repo", owners, lookup) == [carol]
    assert authorizing_owners("ee" * 32, "repo", owners, lookup) == []


def test_maintainer_set_without_announcement_is_the_owner():
    assert maintainer_set("ee" * 32, "repo", _lookup()) == {"ee" * 32}


def test_announcement_lookup_prefers_newest_version():
    old = Announcement.from_event(
        sign_event(ALICE, 30617, [["d", "repo"], ["maintainers", BOB]], "", created_at=1)
    )
    new = Announcement.from_event(sign_event(ALICE, 30617, [["d", "repo"]], "", created_at=2))
    assert _lookup(new, old)(public_key(ALICE), "repo") is new
    assert _lookup(old, new)(public_key(ALICE), "repo") is new


def test_latest_state_highest_created_at_then_lowest_id():
    s1 = _state(ALICE, [["refs/heads/main", C1]], created_at=5)
    s2 = _state(BOB, [["refs/heads/main", C2]], created_at=5)
    s3 = _state(CAROL, [["refs/heads/main", C3]], created_at=4)
    low = min(s1, s2, key=lambda s: s.event.id)
    assert latest_state([s3, s1, s2]) is low
    assert latest_state([s2, s3, s1]) is low
    assert latest_state([]) is None


@pytest.mark.parametrize(
    "name, ok",
    [
        ("refs/heads/main", True),
        ("refs/heads/feat/x-1", True),
        ("refs/heads/a@b", True),
        ("refs/heads/a@{1}", False),
        ("refs/heads/a~1", False),
        ("refs/heads/a:b", False),
        ("refs/heads/a*", False),
        ("refs/heads/a?", False),
        ("refs/heads/[a", False),
        ("refs/heads//a", False),
        ("/refs/heads/a", False),
        ("refs/heads/a.", False),
        ("@", False),
        ("refs/heads/\x7f", False),
    ],
)
def test_ref_name_rules(name, ok):
    assert is_valid_ref_name(name) is ok
