"""Two relays of this project as processes, joined only by an announcement (S17.1, S17.2).

Relay A already hosts a repository: its announcement, its state, an issue, a comment on the
issue and the git data. Relay B has no ``--sync-source`` and no ``--bootstrap-relay``; the same
announcement — listing both relays by name and by address, and both clone URLs — is published
to B only. B must find A in the ``relays`` tag (skipping itself and a name that does not
resolve), copy the state, the issue and the comment from A, fetch the git data from A's clone
URL, release the state and serve it; ``git ls-remote`` on B shows the commit.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest

from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import sign_event
from grasp.relay.peers.discovery import normalise_peer_url
from tests.support.gitrepo import RepoBuilder
from tests.support.nip34 import Key
from tests.support.relay import RelayClient, RelayProcess
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow
D = "peered"
FAST = (
    "--allow-private-fetch",
    "--sync-immediate-delay-ms",
    "100",
    "--sync-loop-interval-ms",
    "200",
)


def status(relay: RelayProcess) -> dict:
    with urllib.request.urlopen(f"{relay.http_url}/status.json", timeout=5) as response:
        return json.load(response)


def test_s17_1_b_discovers_a_from_the_relays_tag_and_copies_state_issue_comment_and_git(
    tmp_path,
):
    a = RelayProcess(tmp_path / "a", "--domain", "a.grasp.test", *FAST).start()
    b = RelayProcess(tmp_path / "b", "--domain", "b.grasp.test", *FAST).start()
    try:
        owner = Key()
        npub = npub_encode(owner.pubkey)
        announcement = owner.announcement(
            D,
            clone=[
                f"http://a.grasp.test/{npub}/{D}.git",
                f"http://b.grasp.test/{npub}/{D}.git",
                f"{a.http_url}/{npub}/{D}.git",
            ],
            relays=["ws://a.grasp.test", "ws://b.grasp.test", a.ws_url, b.ws_url],
        )
        work = RepoBuilder.create(tmp_path / "work.git")
        tip = work.chain(2, branch="main")[-1]
        state = owner.state(D, {"refs/heads/main": tip})
        to_a = RelayClient(a.ws_url)
        assert to_a.publish(announcement)[2] is True
        assert to_a.publish(state)[2] is True
        pushed = subprocess.run(
            ["git", "--git-dir", str(work.path), "push", f"{a.http_url}/{npub}/{D}.git", "main"],
            capture_output=True,
            text=True,
        )
        assert pushed.returncode == 0, pushed.stderr
        wait_for(lambda: to_a.req("s", {"ids": [state.id]}), message="A serves the state")
        coordinate = f"30617:{owner.pubkey}:{D}"
        issue = sign_event(owner.secret, 1621, [["a", coordinate], ["subject", "bug"]], "broken")
        assert to_a.publish(issue)[2] is True
        comment = sign_event(
            Key().secret,
            1111,
            [["E", issue.id], ["K", "1621"], ["e", issue.id], ["k", "1621"]],
            "me too",
        )
        assert to_a.publish(comment)[2] is True, "A accepts a reply to an accepted issue"
        to_a.close()

        started = time.monotonic()
        to_b = RelayClient(b.ws_url)
        assert to_b.publish(announcement)[2] is True  # held on B until its git data arrives
        for event, what in ((state, "state"), (issue, "issue"), (comment, "comment")):
            wait_for(
                lambda event=event: to_b.req("b", {"ids": [event.id]}),
                timeout=30,
                message=lambda what=what: f"B serves the {what}; B's log:\n{b.log[-6000:]}",
            )
        took = time.monotonic() - started
        print(f"\nB discovered A and served state, issue and comment in {took:.2f} s")
        listed = subprocess.run(
            ["git", "ls-remote", f"{b.http_url}/{npub}/{D}.git"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert listed.returncode == 0, listed.stderr
        assert f"{tip}\trefs/heads/main" in listed.stdout

        peers = {p["url"]: p for p in status(b)["peers"]["peers"]}
        peer_a = peers[normalise_peer_url(a.ws_url)]  # discovered from the relays tag
        assert normalise_peer_url(b.ws_url) not in peers  # ourselves (the listening address)
        assert "ws://b.grasp.test" not in peers  # ourselves (--domain)
        assert peer_a["origin"] == "announcement" and peer_a["state"].startswith("live")
        assert peer_a["events_received"] >= 3 and peer_a["last_reconciled_at"] is not None
        unresolvable = peers["ws://a.grasp.test"]  # S17.4: a DNS failure, on the naughty list
        assert unresolvable["state"] == "naughty", unresolvable
        assert unresolvable["last_error"].startswith("dns: "), unresolvable
        to_b.close()
    finally:
        b.stop()
        a.stop()
