"""The seed's sync functions over MockSyncContext (seed phases 5 and 6; SPEC S3, S5)."""

from actors.fakes import MockSyncContext
from actors.sync import (
    get_throttled_domains_with_untried_urls,
    sync_identifier,
    sync_identifier_from_url,
    sync_identifier_next_url,
)
from messages.scheduler import RELEASE_FAILED
from tests.support.policy import manager

ID = "test-repo"
GITHUB = "https://github.com/foo/bar.git"
GITLAB = "https://gitlab.com/foo/bar.git"
BITBUCKET = "https://bitbucket.org/foo/bar.git"


def test_next_url_skips_throttled_domains():
    ctx = MockSyncContext().with_urls([GITHUB, GITLAB]).with_needed_oids(["abc123"])
    throttle = manager(max_concurrent=1)
    throttle.start_request("github.com")
    assert sync_identifier_next_url(ctx, ID, None, set(), throttle) == GITLAB


def test_next_url_skips_tried_urls():
    second = "https://github.com/foo/bar2.git"
    ctx = MockSyncContext().with_urls([GITHUB, second]).with_needed_oids(["abc123"])
    assert sync_identifier_next_url(ctx, ID, None, {GITHUB}, manager()) == second


def test_next_url_with_a_domain_ignores_its_throttle():
    """S5.1: the throttle path asks for its own domain and already holds the slot."""
    ctx = MockSyncContext().with_urls([GITHUB, GITLAB]).with_needed_oids(["abc123"])
    throttle = manager(max_concurrent=1)
    throttle.start_request("github.com")
    assert sync_identifier_next_url(ctx, ID, "github.com", set(), throttle) == GITHUB
    assert sync_identifier_next_url(ctx, ID, "github.com", {GITHUB}, throttle) is None


def test_next_url_is_none_without_pending_events_or_needed_oids():
    throttle = manager()
    no_pending = MockSyncContext().with_urls([GITHUB]).with_needed_oids(["a"]).with_pending(False)
    nothing_needed = MockSyncContext().with_urls([GITHUB]).with_pending(True)
    assert sync_identifier_next_url(no_pending, ID, None, set(), throttle) is None
    assert sync_identifier_next_url(nothing_needed, ID, None, set(), throttle) is None


def test_next_url_excludes_our_own_service_by_exact_authority():
    """S3.2 (deviation): example.com must not exclude notexample.com."""
    ours = "https://example.com/npub1x/test-repo.git"
    theirs = "https://notexample.com/npub1x/test-repo.git"
    ctx = (
        MockSyncContext()
        .with_urls([ours, theirs])
        .with_needed_oids(["a"])
        .with_our_domain("Example.com")
    )
    assert sync_identifier_next_url(ctx, ID, None, set(), manager()) == theirs
    assert sync_identifier_next_url(ctx, ID, None, {theirs}, manager()) is None


def test_next_url_includes_pr_clone_urls_after_announcement_urls():
    pr_url = "https://pr-author.example/fork.git"
    ctx = MockSyncContext().with_urls([GITHUB]).with_pr_urls([pr_url]).with_needed_oids(["a"])
    first = sync_identifier_next_url(ctx, ID, None, set(), manager())
    second = sync_identifier_next_url(ctx, ID, None, {first}, manager())
    assert (first, second) == (GITHUB, pr_url)


def test_from_url_fetches_and_processes_on_success():
    ctx = MockSyncContext().with_urls([GITHUB]).with_needed_oids(["abc123"])
    ctx.url_provides(GITHUB, ["abc123"])
    throttle = manager()
    assert sync_identifier_from_url(ctx, ID, GITHUB, throttle) == 1
    assert ctx.fetched_urls == [GITHUB]
    assert ctx.collect_needed_oids(ID) == set()
    assert ctx.process_calls == [ID]
    assert throttle.throttle("github.com").in_flight == 0


def test_from_url_returns_zero_on_failure_and_still_completes_the_request():
    ctx = MockSyncContext().with_urls([GITHUB]).with_needed_oids(["abc123"]).url_fails(GITHUB)
    throttle = manager(max_concurrent=1)
    assert sync_identifier_from_url(ctx, ID, GITHUB, throttle) == 0
    assert ctx.collect_needed_oids(ID) == {"abc123"}
    assert not throttle.is_throttled("github.com")
    assert ctx.process_calls == []


def test_from_url_without_target_repo_touches_no_throttle():
    ctx = MockSyncContext().with_urls([GITHUB]).with_needed_oids(["a"]).with_target_repo(None)
    throttle = manager()
    assert sync_identifier_from_url(ctx, ID, GITHUB, throttle) == 0
    assert ctx.fetch_log == [] and throttle.throttles == {}


def test_from_url_returns_none_when_the_domain_is_saturated_at_start():
    ctx = MockSyncContext().with_urls([GITHUB]).with_needed_oids(["a"])
    throttle = manager(max_concurrent=1)
    throttle.start_request("github.com")
    assert sync_identifier_from_url(ctx, ID, GITHUB, throttle) is None
    assert ctx.fetch_log == []


def test_tries_multiple_urls_until_complete():
    """Three servers each hold one of three OIDs: every OID is aggregated, sync completes."""
    ctx = MockSyncContext().with_urls([GITHUB, GITLAB, BITBUCKET])
    ctx.with_needed_oids(["oid1", "oid2", "oid3"])
    ctx.url_provides(GITHUB, ["oid1"]).url_provides(GITLAB, ["oid2"])
    ctx.url_provides(BITBUCKET, ["oid3"])
    assert sync_identifier(ctx, ID, manager()) is True
    assert ctx.fetched_urls == [GITHUB, GITLAB, BITBUCKET]
    assert ctx.collect_needed_oids(ID) == set()
    assert not ctx.has_pending_events(ID)


def test_each_fetch_releases_what_it_can_and_later_urls_ask_only_for_the_rest():
    """S5.4 and S7.1: the second request carries only what the first did not bring."""
    ctx = MockSyncContext().with_urls([GITHUB, GITLAB]).with_needed_oids(["oid1", "oid2"])
    ctx.url_provides(GITHUB, ["oid1"]).url_provides(GITLAB, ["oid2"])
    assert sync_identifier(ctx, ID, manager())
    assert ctx.fetch_log == [(GITHUB, ("oid1", "oid2")), (GITLAB, ("oid2",))]


def test_incomplete_when_no_server_has_an_oid():
    ctx = MockSyncContext().with_urls([GITHUB, GITLAB]).with_needed_oids(["oid1", "oid2"])
    ctx.url_provides(GITHUB, ["oid1"]).url_provides(GITLAB, ["oid1"])
    assert sync_identifier(ctx, ID, manager()) is False
    assert ctx.collect_needed_oids(ID) == {"oid2"}


def test_enqueues_throttled_domains_when_incomplete():
    """The throttled domain that holds the OID gets the identifier queued, untriggered."""
    ctx = MockSyncContext().with_urls([GITHUB, GITLAB]).with_needed_oids(["abc123"])
    ctx.url_provides(GITHUB, ["abc123"])
    throttle = manager(max_concurrent=1)
    throttle.start_request("github.com")
    assert sync_identifier(ctx, ID, throttle) is False
    assert ctx.fetched_urls == [GITLAB]
    assert ctx.collect_needed_oids(ID) == {"abc123"}
    assert throttle.has_queued_identifier("github.com", ID)
    assert throttle.throttle("github.com").get_tried_urls(ID) == frozenset()
    assert throttle.is_throttled("github.com")
    assert not throttle.has_queued_identifier("gitlab.com", ID)


class _SlotTakenOnce:
    """A ThrottleManager where a concurrent fetch takes ``domain``'s only slot between the
    sync's ``is_throttled`` and its ``start_request``, and ends right after (S6.4's race)."""

    def __init__(self, domain: str) -> None:
        self.inner, self.domain, self.raced = manager(max_concurrent=1), domain, False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def start_request(self, domain: str) -> bool:
        if domain == self.domain and not self.raced:
            self.raced = True
            assert self.inner.start_request(domain)  # the concurrent fetch
            granted = self.inner.start_request(domain)
            self.inner.complete_request(domain)
            return granted
        return self.inner.start_request(domain)


def test_a_domain_whose_slot_was_lost_is_queued_even_when_free_again():
    """S5.3 with S6.4: the URL whose slot went to a concurrent fetch is left to its domain's
    queue, although that domain has a slot free again when the sync ends (it used to wait for
    the Scheduler's backoff instead)."""
    ctx = MockSyncContext().with_urls([GITHUB, GITLAB]).with_needed_oids(["abc123"])
    ctx.url_provides(GITHUB, ["abc123"])
    throttle = _SlotTakenOnce("github.com")
    assert sync_identifier(ctx, ID, throttle) is False
    assert ctx.fetched_urls == [GITLAB]
    assert not throttle.inner.is_throttled("github.com")
    assert throttle.inner.has_queued_identifier("github.com", ID)
    assert throttle.inner.throttle("github.com").get_tried_urls(ID) == frozenset()
    assert not throttle.inner.has_queued_identifier("gitlab.com", ID)


def test_get_throttled_domains_returns_only_throttled_with_untried():
    ctx = MockSyncContext().with_urls([GITHUB, GITLAB, BITBUCKET]).with_needed_oids(["a"])
    throttle = manager(max_concurrent=1)
    throttle.start_request("github.com")
    throttle.start_request("gitlab.com")
    result = get_throttled_domains_with_untried_urls(ctx, ID, {GITHUB}, throttle)
    assert [(r.domain, set(r.tried_urls_for_domain)) for r in result] == [("gitlab.com", set())]


def test_uses_pr_clone_urls_when_announcement_urls_fail():
    pr_url = "https://pr-author.example/fork.git"
    ctx = MockSyncContext().with_urls([GITHUB]).with_pr_urls([pr_url]).with_needed_oids(["c1"])
    ctx.url_fails(GITHUB).url_provides(pr_url, ["c1"])
    assert sync_identifier(ctx, ID, manager())
    assert ctx.fetched_urls == [GITHUB, pr_url]


def test_releases_data_already_on_disk_without_fetching():
    """Objects that arrived by another path are released before any network use."""
    ctx = MockSyncContext().with_urls([GITHUB])
    ctx.needed_oids[ID] = set()  # held, but every object is already present
    ctx.with_pending(None)
    assert sync_identifier(ctx, ID, manager())
    assert ctx.fetch_log == [] and ctx.released == {ID}


def _attempts():
    seen = []
    return seen, seen.append


def test_a_release_that_fails_with_every_object_present_leaves_the_sync_incomplete():
    """S5.3 (deviation): the fetch brought everything but its release pass and the one more
    after it reported errors, so the sync is incomplete and S4.1's backoff tries again; the
    attempt says why. It used to count as complete, and the event was never released."""
    ctx = MockSyncContext().with_urls([GITHUB]).with_needed_oids(["abc123"])
    ctx.url_provides(GITHUB, ["abc123"]).release_fails(ID, times=2)
    seen, report = _attempts()
    assert sync_identifier(ctx, ID, manager(), on_attempt=report) is False
    assert ctx.has_pending_events(ID) and ctx.collect_needed_oids(ID) == set()
    assert [(a.outcome, a.reason, a.detail) for a in seen] == [
        ("released", RELEASE_FAILED, f"{ID}: configured to fail")
    ]
    assert sync_identifier(ctx, ID, manager()) is True  # the retry: nothing to fetch, released
    assert ctx.released == {ID} and len(ctx.fetch_log) == 1


def test_a_release_that_fails_once_is_retried_within_the_sync():
    """S5.3's "then process once more": the second pass releases, so the sync is complete."""
    ctx = MockSyncContext().with_urls([GITHUB]).with_needed_oids(["abc123"])
    ctx.url_provides(GITHUB, ["abc123"]).release_fails(ID, times=1)
    assert sync_identifier(ctx, ID, manager()) is True
    assert ctx.released == {ID} and ctx.process_calls == [ID, ID, ID]


def test_a_failed_release_of_objects_already_on_disk_leaves_the_sync_incomplete():
    """Nothing to fetch, and the first release pass failed: incomplete, with no second pass
    (its answer is known) and no request."""
    ctx = MockSyncContext().with_urls([GITHUB]).release_fails(ID)
    ctx.needed_oids[ID] = set()  # held, but every object is already present
    assert sync_identifier(ctx, ID, manager()) is False
    assert ctx.process_calls == [ID] and ctx.fetch_log == [] and ctx.released == set()
    assert sync_identifier(ctx, ID, manager()) is True and ctx.released == {ID}


def test_a_release_told_without_waiting_is_awaited_once_nothing_is_left_to_fetch():
    """A FetchActor's first release is a tell whose answer nobody reads: with nothing left to
    fetch the sync awaits one more pass, so a failure there is seen, not taken for success."""
    ctx = MockSyncContext().with_urls([GITHUB]).release_fails(ID)
    ctx.needed_oids[ID] = set()
    told = []
    assert sync_identifier(ctx, ID, manager(), release_first=told.append) is False
    assert told == [ID] and ctx.process_calls == [ID] and ctx.fetch_log == []


def test_objects_already_present_are_released_without_an_attempt_or_another_url():
    """The relay counts present objects as needed (S2.3): the first URL's "fetch" asks the
    network nothing, so no attempt is recorded (S18.1), the release runs awaited, and no other
    URL is walked. It used to record a "released, 0 objects" attempt for every URL and release
    nothing: here the first release is a FetchActor's tell that has not run yet."""
    ctx = MockSyncContext().with_urls([GITHUB, GITLAB]).with_present_oids(["abc123"])
    seen, report = _attempts()
    told = []
    assert sync_identifier(ctx, ID, manager(), on_attempt=report, release_first=told.append)
    assert seen == [] and ctx.fetch_log == [] and ctx.released == {ID}
    assert told == [ID] and ctx.process_calls == [ID]


def test_a_failed_release_of_present_objects_ends_the_sync_incomplete_after_one_url():
    ctx = MockSyncContext().with_urls([GITHUB, GITLAB]).with_present_oids(["abc123"])
    ctx.release_fails(ID, times=2)  # the first pass and the one the present "fetch" ran
    seen, report = _attempts()
    assert sync_identifier(ctx, ID, manager(), on_attempt=report) is False
    assert seen == [] and ctx.process_calls == [ID, ID] and ctx.released == set()
    assert sync_identifier(ctx, ID, manager()) is True and ctx.released == {ID}
