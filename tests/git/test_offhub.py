"""S7.4: pack work stays off the gevent hub; deadlines still hold while a thread indexes."""

from __future__ import annotations

import time
from pathlib import Path

import gevent
import pytest
from gevent import monkey

from grasp.git import FetchError, FetchLimits, copy_objects, fetch_oids, set_nostr_ref
from grasp.git import ingest
from grasp.git.offhub import call_off_hub
from tests.git.conftest import PRIVATE_OK, QUICK, BigRepo, Source
from tests.support.gitrepo import assert_fsck_clean, has_object, init_bare, objects_listing
from tests.support.gitserver import GitServer
from tests.support.gitstall import HubTicker
from tests.support.wait import wait_for

#: A real OS-level event: waiting on it blocks a worker thread for real (patched ones would not).
RealEvent = monkey.get_original("threading", "Event")

STALL_LIMIT = 0.1


def test_the_ticker_detects_a_stall():
    """The probe itself works: 150 ms of CPU on the hub shows up."""
    with HubTicker() as ticker:
        end = time.monotonic() + 0.15
        while time.monotonic() < end:
            pass
    assert ticker.worst >= 0.12


def test_s7_4_fetch_and_copy_of_2000_commits_never_stall_the_hub(big_repo: BigRepo, tmp_path: Path):
    full, incremental, copy = (init_bare(tmp_path / f"{name}.git") for name in ("full", "incremental", "copy"))
    tip, half = big_repo.commits[-1], big_repo.commits[999]
    with GitServer(big_repo.root) as server:
        with HubTicker() as fetch_ticker:
            assert fetch_oids(full, server.url("big.git"), [tip], policy=PRIVATE_OK, limits=QUICK) == [tip]
        fetch_oids(incremental, server.url("big.git"), [half], policy=PRIVATE_OK, limits=QUICK)
        set_nostr_ref(incremental, "d" * 64, half)
        with HubTicker() as incremental_ticker:
            assert fetch_oids(incremental, server.url("big.git"), [tip], policy=PRIVATE_OK, limits=QUICK) == [tip]
    with HubTicker() as copy_ticker:
        assert copy_objects(full, copy, [tip]) == 1
    assert has_object(copy, big_repo.commits[0])
    worst = {"fetch": fetch_ticker.worst, "incremental": incremental_ticker.worst, "copy": copy_ticker.worst}
    assert max(worst.values()) < STALL_LIMIT, worst
    assert min(t.ticks for t in (fetch_ticker, incremental_ticker, copy_ticker)) > 5, "the hub kept ticking"


def test_abandoned_thread_is_cleaned_up_only_after_it_ends():
    gate, events = RealEvent(), []

    def work() -> str:
        gate.wait(10)
        events.append("work ended")
        return "result"

    with pytest.raises(gevent.Timeout), gevent.Timeout(0.05):
        call_off_hub(work, abandon=lambda: events.append("abandon"))
    assert events == [], "the thread is still running; nothing was cleaned up under its feet"
    gate.set()
    wait_for(lambda: events == ["work ended", "abandon"], message=f"cleanup after the thread (saw {events})")


def test_failing_thread_is_cleaned_up_at_once():
    events = []

    def work() -> None:
        raise RuntimeError("corrupt pack")

    with pytest.raises(RuntimeError):
        call_off_hub(work, abandon=lambda: events.append("abandon"))
    assert events == ["abandon"]


def test_s7_2_deadline_during_indexing_leaves_the_repository_unchanged(
    source: Source, target: Path, monkeypatch: pytest.MonkeyPatch
):
    """gevent.Timeout cannot stop the indexing thread; its output must still never land."""
    gate, started = RealEvent(), RealEvent()
    real_index = ingest._index_in_staging

    def slow_index(*args):
        started.set()
        gate.wait(10)
        return real_index(*args)

    monkeypatch.setattr(ingest, "_index_in_staging", slow_index)
    before = objects_listing(target)
    with GitServer(source.root) as server:
        with pytest.raises(FetchError) as info:
            fetch_oids(target, server.url("src.git"), [source.main[-1]], policy=PRIVATE_OK, limits=FetchLimits(0.5, 5))
    assert info.value.reason == "timeout"
    assert started.is_set(), "the deadline fired while the pack was being indexed"
    gate.set()
    wait_for(lambda: objects_listing(target) == before, message="the abandoned staging area to be removed")
    assert not has_object(target, source.main[-1])
    assert_fsck_clean(target)
