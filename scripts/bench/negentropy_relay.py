"""NIP-77 against the real relay: bytes to reconcile N events differing in a few (S17.3).

Called by ``scripts/bench/negentropy.py`` (its last table; ``--no-relay`` skips it). A
``grasp-relay`` process is started through its CLI with a temporary data directory; one
repository is accepted (announcement plus an empty state), then the relay is given the shared
events and its own extra ones (issues, patches, statuses and comments tagging the repository,
which the GRASP write policy stores). The client holds the shared events and its own extras.

Both methods run in the same run over the same websocket server:

* **NIP-77**: our :class:`~grasp.nostr.nip77.NegentropyInitiator` against the relay's
  responder (its default 60,000-byte frame limit), then a REQ by ids for what the client lacks
  and an EVENT (answered OK) for each event the relay lacks;
* **REQ paging**: what a history copy without NIP-77 costs — REQ pages of ``--max-limit``
  (500) events walked backwards by ``until`` until a page brings nothing new (the GRASP-02
  fallback), which still tells the client nothing about what the relay lacks.

Bytes are UTF-8 bytes of the JSON texts sent and received (websocket framing, a few bytes per
message, is left out for both).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from grasp.nostr.event import Event, generate_secret_key, sign_event
from grasp.nostr.filters import Filter
from grasp.nostr.nip77 import NegentropyInitiator, ReconcileResult
from tests.support.relay import RelayClient, RelayProcess, accepted_repository

KINDS = (1617, 1621, 1630, 1111)
FILTER = Filter(kinds=set(KINDS))
PAGE = 500


class CountingClient(RelayClient):
    """A NIP-01 client that counts the bytes of every text it sends and receives."""

    sent = 0
    received = 0

    def send(self, *frame: object) -> None:
        text = json.dumps(list(frame), separators=(",", ":"), ensure_ascii=False)
        self.sent += len(text.encode())
        self.ws.send(text)

    def recv(self) -> list:
        text = self.ws.recv()
        self.received += len(text.encode())
        return json.loads(text)

    def reset(self) -> None:
        self.sent = self.received = 0

    @property
    def total(self) -> int:
        return self.sent + self.received


def repo_events(count: int, address: str, seed: int) -> list[Event]:
    """Signed events tagging ``address`` (~400-600 B of JSON), 37 s apart on average."""
    rng = random.Random(seed)
    keys = [generate_secret_key() for _ in range(20)]
    events = []
    for n in range(count):
        tags = [["a", address], ["subject", f"fix the {rng.choice(('parser', 'fetch'))} #{n}"]]
        words = (rng.choice(("the", "relay", "fetch", "commit", "ref")) for _ in range(16))
        at = 1_750_000_000 + n * 37 + rng.randrange(30)
        events.append(sign_event(rng.choice(keys), KINDS[n % 4], tags, " ".join(words), at))
    return events


def publish_all(client: RelayClient, events: list[Event]) -> None:
    refused = [ok for ok in client.publish_all(events, page=PAGE) if ok[2] is not True]
    if refused:
        raise RuntimeError(f"the relay refused {len(refused)} events, e.g. {refused[0]}")


def nip77(client: CountingClient, items, by_id: dict[str, Event]) -> tuple[ReconcileResult, int]:
    """Reconcile, download the missing, upload the extra; returns the result and rounds."""
    init = NegentropyInitiator(items, "bench", FILTER)
    frame: list | ReconcileResult = init.open_frame()
    while not isinstance(frame, ReconcileResult):
        client.send(*frame)
        frame = init.on_frame(client.recv())
    client.send(*init.close_frame())
    fetched = client.req("fetch", {"ids": sorted(frame.need_ids)})
    client.send("CLOSE", "fetch")  # REQ stays live after EOSE (NIP-01)
    assert {e["id"] for e in fetched} == frame.need_ids
    for event_id in frame.have_ids:
        client.publish(by_id[event_id])
    return frame, init.rounds


def req_paging(client: CountingClient) -> tuple[set[str], int]:
    """The REQ/EOSE history copy by ``until`` pages; returns the ids seen and the pages."""
    seen: set[str] = set()
    until: int | None = None
    pages = 0
    while True:
        flt = {"kinds": list(KINDS), "limit": PAGE} | ({"until": until} if until else {})
        page = client.req(f"h{pages}", flt)
        client.send("CLOSE", f"h{pages}")  # REQ stays live after EOSE (NIP-01)
        pages += 1
        new = {e["id"] for e in page} - seen
        if not new:
            return seen, pages
        seen |= new
        until = min(e["created_at"] for e in page)


def timed(func: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    value = func()
    return value, time.perf_counter() - start


def measure(events: int, missing: int) -> list[tuple]:
    """The table rows: method, bytes, messages waited for, seconds, REQ bytes / these."""
    with tempfile.TemporaryDirectory(prefix="neg-bench-") as tmp:
        relay = RelayProcess(
            Path(tmp) / "relay", "--event-rate-limit", "0", "--log-level", "WARNING"
        )
        with relay:
            client = CountingClient(relay.ws_url, timeout=60)
            owner = generate_secret_key()
            repo = accepted_repository(client, relay.http_url.removeprefix("http://"), owner)
            started = time.perf_counter()
            pool = repo_events(events + missing, f"30617:{repo.pubkey}:{repo.d}", seed=4)
            signing = time.perf_counter() - started
            rng = random.Random(5)
            rng.shuffle(pool)
            only_client, only_relay = pool[:missing], pool[missing : 2 * missing]
            shared = pool[2 * missing :]
            _, loading = timed(lambda: publish_all(client, shared + only_relay))
            print(
                f"real relay: signed {len(pool):,} events in {signing:.1f} s, the relay stored "
                f"{len(shared) + len(only_relay):,} in {loading:.1f} s"
            )
            by_id = {e.id: e for e in pool}
            items = [(e.created_at, e.id) for e in shared + only_client]
            client.reset()
            seen, req_secs = timed(lambda: req_paging(client))
            ids, pages = seen  # type: ignore[misc]
            req_bytes = client.total
            assert ids == {e.id for e in shared + only_relay}, "REQ paging missed events"
            client.reset()
            outcome, neg_secs = timed(lambda: nip77(client, items, by_id))
            result, rounds = outcome  # type: ignore[misc]
            assert result.need_ids == {e.id for e in only_relay}
            assert result.have_ids == {e.id for e in only_client}
            neg_bytes = client.total
            client.close()
    return [
        (
            "NIP-77 + REQ by ids + EVENT uploads",
            f"{neg_bytes:,}",
            rounds + 1 + missing,
            f"{neg_secs:.2f}",
            f"{req_bytes / neg_bytes:.1f}x",
        ),
        (
            f"REQ paging ({pages} pages of {PAGE})",
            f"{req_bytes:,}",
            pages,
            f"{req_secs:.2f}",
            "1.0x",
        ),
    ]
