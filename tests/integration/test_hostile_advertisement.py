"""S14.1 against a ``grasp-relay`` process at its default fetch settings: a remote whose ref
advertisement never ends costs the relay little memory and no responsiveness, and the honest
remote listed after it releases the event.

The announcement lists the hostile :class:`~tests.support.endless_refs.EndlessRefsServer` first
and an honest ``git http-backend`` second; the held state needs a commit only the honest one
has. While the relay fetches, the test polls NIP-11 (a new HTTP connection each time) and a REQ
(on one websocket) in a loop with a deadline, timing every answer, and reads the relay's memory
from ``/proc/<pid>/status``: ``VmHWM`` (the peak resident set) is reset through
``/proc/<pid>/clear_refs`` just before the attack, so the peak between samples counts too.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.support import E2ERelay, announcement_listing
from tests.support.endless_refs import EndlessRefsServer
from tests.support.gitrepo import RepoBuilder
from tests.support.nip34 import Key
from tests.support.relay import RelayClient

pytestmark = pytest.mark.slow

ID = "hostile"
MIB = 1 << 20
#: S14.1: what the attack may cost at most.
RSS_GROWTH_LIMIT = 256 * MIB
ANSWER_LIMIT_SECS = 1.0
#: How long the relay gets to meet the hostile URL, give up on it and release from the next.
RELEASE_DEADLINE_SECS = 20.0


@dataclass
class Observed:
    """What the polling loop saw of the relay during the attack."""

    baseline_rss: int
    peak_rss: int = 0
    nip11_secs: list[float] = field(default_factory=list)
    req_secs: list[float] = field(default_factory=list)
    released_after: float | None = None

    @property
    def growth(self) -> int:
        return self.peak_rss - self.baseline_rss

    def summary(self) -> str:
        return (
            f"RSS {self.baseline_rss / MIB:.0f} MiB -> peak {self.peak_rss / MIB:.0f} MiB "
            f"(+{self.growth / MIB:.0f} MiB); worst NIP-11 {max(self.nip11_secs, default=0):.3f} s"
            f", worst REQ {max(self.req_secs, default=0):.3f} s over {len(self.req_secs)} polls; "
            f"released after {self.released_after} s"
        )


def status_bytes(pid: int, key: str) -> int:
    """A ``kB`` line of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in bytes."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{key}:\s+(\d+) kB$", text, re.MULTILINE)
    assert match, f"no {key} in /proc/{pid}/status"
    return int(match.group(1)) * 1024


def reset_peak_rss(pid: int) -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` value 5); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def timed_nip11(relay: E2ERelay) -> float:
    started = time.monotonic()
    request = urllib.request.Request(
        relay.http_url + "/", headers={"Accept": "application/nostr+json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert "supported_nips" in json.loads(response.read())
    return time.monotonic() - started


def watch_until_released(relay: E2ERelay, client: RelayClient, event_id: str) -> Observed:
    """Poll NIP-11, a REQ for ``event_id`` and the relay's memory until the event is served."""
    pid = relay.process.pid
    observed = Observed(baseline_rss=status_bytes(pid, "VmRSS"))
    has_hwm = reset_peak_rss(pid)
    started = time.monotonic()
    deadline = started + RELEASE_DEADLINE_SECS
    while time.monotonic() < deadline:
        observed.nip11_secs.append(timed_nip11(relay))
        before_req = time.monotonic()
        served = client.req("poll", {"ids": [event_id]})
        observed.req_secs.append(time.monotonic() - before_req)
        rss = status_bytes(pid, "VmHWM" if has_hwm else "VmRSS")
        observed.peak_rss = max(observed.peak_rss, rss)
        if served:
            observed.released_after = round(time.monotonic() - started, 2)
            break
        time.sleep(0.05)  # poll interval of a deadline-bounded loop (gevent-patched: cooperative)
    return observed


@pytest.mark.parametrize("where", ["ls-refs", "info/refs"])
def test_s14_1_endless_advertisement_costs_little_memory_and_the_next_url_releases(
    cluster, where: str
):
    owner = Key()
    b = cluster.relay("B", user_delay=0.2)  # default --fetch-* settings
    hostile = EndlessRefsServer(where, host="127.0.0.3").start()
    cluster.servers["H"] = (hostile, None)  # stopped with the cluster
    g = cluster.git_server("G", host="127.0.0.2")
    main = RepoBuilder.create(g.root / f"{ID}.git").chain(2, branch="main")[-1]
    bad_url, good_url = hostile.url(f"{ID}.git"), g.url(f"{ID}.git")
    announcement = announcement_listing(owner, ID, [b.domain], extra_clone=[bad_url, good_url])
    state = owner.state(ID, {"refs/heads/main": main})

    with b.client() as client:
        b.publish(announcement, state)
        observed = watch_until_released(b, client, state.id)
    print(f"\n[{where}] {observed.summary()}; hostile sent {hostile.bytes_sent() / MIB:.1f} MiB")

    assert observed.released_after is not None, observed.summary()
    assert hostile.count(service="git-upload-pack") >= 1, "the hostile URL was tried first"
    assert hostile.bytes_sent() >= 32 * MIB, "the advertisement reached the cap"
    assert re.search(rf"fetch from {re.escape(bad_url)} failed \(too_large\)", b.log), b.log_tail()
    assert re.search(rf"{ID}: fetched 1 OIDs from {re.escape(good_url)}", b.log), b.log_tail()
    assert f"{ID} incomplete" not in b.log, "the next URL was tried in the same attempt"
    assert observed.growth < RSS_GROWTH_LIMIT, observed.summary()
    assert max(observed.nip11_secs) < ANSWER_LIMIT_SECS, observed.summary()
    assert max(observed.req_secs) < ANSWER_LIMIT_SECS, observed.summary()
