"""A request's domain slot is given back exactly once, at the end of its transfer (S6.1, S6.4).

``sync_identifier_from_url`` hands the port an ``on_transfer_end`` callback: the slot comes
back when the port calls it (the pack's last byte arrived, before indexing), else when the
fetch returns or raises — a failure after the transfer, a bug, a second report or a cancelled
greenlet never give it back twice, and never leave it taken. Each ending still reports the
request's reason (S18.2). The throttle here is the plain ``ThrottleManager`` (S6.1 counting:
a request stays in the window until one window after it ended).
"""

from __future__ import annotations

import gevent
import pytest
from gevent.event import Event

from actors.context import FetchFailed, FetchResult
from actors.fakes import MockSyncContext
from actors.sync import sync_identifier_from_url
from tests.support.policy import manager

ID = "test-repo"
DOMAIN = "git.example"
URL = f"https://{DOMAIN}/r.git"


class ScriptedPort(MockSyncContext):
    """The mock port whose ``fetch_oids`` runs ``script(on_transfer_end)`` instead."""

    def __init__(self, script):
        super().__init__()
        self.script = script
        self.with_urls([URL]).with_needed_oids(["a" * 40])

    def fetch_oids(self, repo_path, url, oids, on_transfer_end=None):
        self.fetch_log.append((url, tuple(oids)))
        return self.script(on_transfer_end)


class Recording:
    """``ThrottleManager`` plus the calls that give slots back, in order."""

    def __init__(self, **limits):
        self.inner = manager(**limits)
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def transfer_ended(self, domain, url):
        self.calls.append(("transfer_ended", url))
        self.inner.transfer_ended(domain, url)

    def complete_request(self, domain, url=None, reason=None, freed=False):
        self.calls.append(("complete_request", url, reason, freed))
        self.inner.complete_request(domain, url, reason, freed)

    def counts(self) -> tuple[int, int]:
        state = self.inner.throttle(DOMAIN)
        return state.in_flight, state.window_used(self.inner.clock.now())


def test_s6_1_the_slot_is_free_once_the_transfer_ended_while_the_fetch_goes_on():
    seen = []

    def script(ended):
        seen.append(throttle.inner.start_request(DOMAIN))  # still transferring: no room
        ended()
        seen.append(throttle.counts())  # "indexing": the slot is back, the window holds it
        seen.append(throttle.inner.start_request(DOMAIN))  # another request may start now
        throttle.inner.complete_request(DOMAIN)
        return FetchResult(("a" * 40,))

    throttle = Recording(max_concurrent=1)
    assert sync_identifier_from_url(ScriptedPort(script), ID, URL, throttle) == 1
    assert seen == [False, (0, 1), True]
    assert throttle.calls == [
        ("transfer_ended", URL),
        ("complete_request", URL, None, True),
    ]
    assert throttle.counts() == (0, 2)


def test_s6_1_a_failure_after_the_transfer_frees_the_slot_once_and_keeps_its_reason():
    """index-pack rejecting the received pack: the remote's request was over already."""

    def script(ended):
        ended()
        raise FetchFailed(URL, "protocol", "index-pack: bad pack")

    throttle = Recording()
    assert sync_identifier_from_url(ScriptedPort(script), ID, URL, throttle) == 0
    assert throttle.calls == [
        ("transfer_ended", URL),
        ("complete_request", URL, "protocol", True),
    ]
    assert throttle.counts() == (0, 1)


def test_s6_1_a_repeated_transfer_end_frees_nothing_twice():
    def script(ended):
        ended()
        ended()
        return FetchResult((), missing=1)

    throttle = Recording()
    assert sync_identifier_from_url(ScriptedPort(script), ID, URL, throttle) == 0
    assert throttle.calls == [
        ("transfer_ended", URL),
        ("complete_request", URL, "missing_objects", True),
    ]
    assert throttle.counts() == (0, 1)


def test_s6_1_a_failure_before_the_transfer_ended_frees_the_slot_with_the_request():
    def script(ended):
        raise FetchFailed(URL, "timeout", "deadline")

    throttle = Recording()
    assert sync_identifier_from_url(ScriptedPort(script), ID, URL, throttle) == 0
    assert throttle.calls == [("complete_request", URL, "timeout", False)]
    assert throttle.counts() == (0, 1)


def test_s6_1_a_port_that_never_reports_the_transfer_frees_at_the_return():
    throttle = Recording()
    port = ScriptedPort(lambda ended: FetchResult(("a" * 40,)))
    assert sync_identifier_from_url(port, ID, URL, throttle) == 1
    assert throttle.calls == [("complete_request", URL, None, False)]
    assert throttle.counts() == (0, 1)


def test_s6_1_a_bug_after_the_transfer_propagates_with_the_slot_freed_once():
    def script(ended):
        ended()
        raise KeyError("a bug in the port")

    throttle = Recording()
    with pytest.raises(KeyError):
        sync_identifier_from_url(ScriptedPort(script), ID, URL, throttle)
    assert throttle.calls == [("transfer_ended", URL), ("complete_request", URL, "error", True)]
    assert throttle.counts() == (0, 1)


@pytest.mark.parametrize("after_transfer", [False, True])
def test_s6_1_a_cancelled_fetch_frees_its_slot_exactly_once(after_transfer):
    """Shutdown kills the FetchActor's work greenlet mid-fetch (``WorkCancelled``)."""
    reached = Event()

    def script(ended):
        if after_transfer:
            ended()
        reached.set()
        Event().wait(timeout=30)  # blocked in the transfer or in indexing until killed
        raise AssertionError("not cancelled")

    throttle = Recording()
    work = gevent.spawn(sync_identifier_from_url, ScriptedPort(script), ID, URL, throttle)
    assert reached.wait(timeout=5)
    assert throttle.counts()[0] == (0 if after_transfer else 1)
    work.kill(timeout=5)
    assert work.dead
    freeing = [c for c in throttle.calls if c[0] == "transfer_ended" or not c[3]]
    assert len(freeing) == 1
    assert throttle.calls[-1][:3] == ("complete_request", URL, "error")
    assert throttle.counts() == (0, 1)
