"""A relay with a sync source, both as processes (S10.7, S4.2; issue 6 must-show).

Relay A is where a maintainer publishes and pushes; relay B lists A as its sync source. The
announcement names both relays (each only accepts announcements that list it, S10.4) and A's
real address as an extra clone URL so B can fetch from it.
"""

import json
import subprocess
import time
import urllib.request

import pytest

from actors.trace.format import load_trace
from grasp.nostr.bech32 import npub_encode
from tests.support.gitrepo import RepoBuilder, for_each_ref
from tests.support.nip34 import Key
from tests.support.relay import RelayClient, RelayProcess
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow
D = "synced"


def test_sync_source_events_arrive_within_a_second_and_take_the_synced_path(tmp_path):
    a = RelayProcess(tmp_path / "a", "--domain", "a.grasp.test", "--allow-private-fetch").start()
    trace = tmp_path / "b-trace.jsonl"
    b = RelayProcess(
        tmp_path / "b",
        "--domain",
        "b.grasp.test",
        "--allow-private-fetch",
        "--sync-source",
        a.ws_url,
        "--trace",
        str(trace),
    ).start()
    try:
        owner = Key()
        npub = npub_encode(owner.pubkey)
        clone = [f"http://{host}/{npub}/{D}.git" for host in ("a.grasp.test", "b.grasp.test")]
        announcement = owner.announcement(
            D,
            clone=[*clone, f"{a.http_url}/{npub}/{D}.git"],
            relays=["ws://a.grasp.test", "ws://b.grasp.test"],
        )
        work = RepoBuilder.create(tmp_path / "work.git")
        tip = work.chain(3, branch="main")[-1]
        state = owner.state(D, {"refs/heads/main": tip})
        to_a = RelayClient(a.ws_url)
        to_a.publish(announcement)
        to_a.publish(state)
        pushed = subprocess.run(
            [
                "git",
                "--git-dir",
                str(work.path),
                "push",
                f"{a.http_url}/{npub}/{D}.git",
                "main:main",
            ],
            capture_output=True,
            text=True,
        )
        assert pushed.returncode == 0, pushed.stderr
        wait_for(lambda: to_a.req("a", {"ids": [state.id]}), message="A serves the state")
        served_on_a = time.monotonic()

        def enqueued():
            lines = load_trace(trace) if trace.exists() else []
            return [
                line for line in lines if line.type == "EnqueueSync" and line.msg["identifier"] == D
            ]

        first = wait_for(
            enqueued, timeout=5, message=lambda: f"B holding the state; log:\n{b.log}"
        )[0]
        assert time.monotonic() - served_on_a < 1.0 + 0.5  # arrival within a second (+ polling)
        assert first.sender == "relay" and first.msg["reason"] == "synced"  # S4.2: 0.5 s
        to_b = RelayClient(b.ws_url)
        wait_for(
            lambda: to_b.req("b", {"ids": [state.id]}), timeout=10, message="B serves the state"
        )
        lines = load_trace(trace)
        attempt = next(
            line for line in lines if line.type == "SyncIdentifier" and line.msg["identifier"] == D
        )
        assert 0.5 <= attempt.t - first.t < 0.6  # the first fetch attempt 0.5 s later
        repo = b.data_dir / "repos" / npub / f"{D}.git"
        assert for_each_ref(repo) == {"refs/heads/main": tip}
        with urllib.request.urlopen(f"{b.http_url}/status.json", timeout=5) as response:
            sources = json.load(response)
        [connection] = sources["sync_sources"]["connections"]
        assert connection["state"] == "connected" and connection["events_received"] >= 2
        to_a.close(), to_b.close()
    finally:
        b.stop()
        a.stop()
