"""Fixtures of the end-to-end tier: a :class:`Cluster` per test, a deadline per test, a report.

* ``cluster`` starts relays and git servers for one test and stops them all afterwards; when
  the test failed, the tail of every relay's log is printed (pytest shows it with the failure).
* Every test here is bounded: the call phase runs under a ``gevent.Timeout`` of
  :data:`TEST_DEADLINE_SECS` (all waiting in this tier is cooperative — ``wait_for`` polls with
  ``gevent.sleep``, subprocess and socket waits are patched — so the timeout always gets in),
  on top of the deadline of each individual wait.
* The terminal summary lists, per test, its wall time and the upload-pack requests each server
  saw (see :mod:`tests.integration.remotes` for what is counted; a relay's count includes the
  test's own ``git ls-remote`` checks against it).
"""

from __future__ import annotations

from collections.abc import Iterator

import gevent
import pytest

from tests.integration.support import Cluster

TEST_DEADLINE_SECS = 30.0

_REPORT = pytest.StashKey[dict]()


class E2EDeadlineExceeded(AssertionError):
    """The test ran longer than its bound; the cluster is torn down regardless."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    timeout = gevent.Timeout(
        TEST_DEADLINE_SECS, E2EDeadlineExceeded(f"{item.nodeid} exceeded {TEST_DEADLINE_SECS:g} s")
    )
    timeout.start()
    try:
        yield
    finally:
        timeout.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_REPORT] = {"duration": report.duration, "failed": report.failed}


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path) -> Iterator[Cluster]:
    world = Cluster(tmp_path)
    try:
        yield world
    finally:
        outcome = request.node.stash.get(_REPORT, {})
        if outcome.get("failed"):
            for relay in world.relays.values():
                print(relay.log_tail(80))
        rows = request.config.stash.setdefault(_REPORT, {})
        rows[request.node.nodeid] = (
            outcome.get("duration"),
            world.git_requests(),
            world.server_kinds(),
        )
        world.close()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    rows = config.stash.get(_REPORT, {})
    if not rows:
        return
    write = terminalreporter.write_line
    terminalreporter.section("end-to-end: wall time and upload-pack requests per server")
    for nodeid, (duration, counts, kinds) in rows.items():
        wall = f"{duration:6.2f} s" if duration is not None else "   n/a  "
        write(f"{wall}  {nodeid.rsplit('::', 1)[-1]}")
        for name, tally in counts.items():
            write(f"            {name:>3} ({kinds[name]}): {tally}")
