#!/usr/bin/env python3
"""NIP-01 throughput and latency of the relay process, 1 client vs N concurrent clients.

    .venv/bin/python scripts/bench/relay.py [--clients 50] [--events 100] [--reqs 20]

``grasp-relay`` runs as its own process (started through its CLI by tests/support/relay.py, data
in a temp dir, log level WARNING). The clients are lean wsproto connections on greenlets in this
process; every event is signed before the clock starts.

* EVENT->OK: each client publishes its events (NIP-34 issues of its own repository, 1621) one at
  a time, waiting for each OK; throughput is all events over the wall time of the slowest client,
  latency is per EVENT->OK round trip.
* REQ->EOSE: each client then asks ``--reqs`` times for its own newest 50 issues
  (``authors`` + ``kinds`` + ``limit``) and for the newest 500 of everyone (``kinds`` + ``limit``).
* relay CPU: the relay process's user+system CPU time over the wall time of the phase (100% = the
  relay's one core is saturated; the clients share the machine's other core).

Both columns run against the same relay; the N-client run goes first, so the 1-client REQs see the
full store. Numbers are from one run: rerun to see the noise.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
from wsproto.connection import Connection, ConnectionType  # noqa: E402
from wsproto.events import TextMessage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from grasp.nostr.event import Event, generate_secret_key  # noqa: E402
from tests.support.relay import RelayClient, RelayProcess, accepted_repository, issue  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def relay_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


class BenchClient:
    """A lean websocket client (wsproto over a plain socket, 64 KiB reads).

    websocket-client reads each frame with several small recv calls, which made the *client* the
    bottleneck for REQ answers of hundreds of frames; this one parses whatever arrived at once.
    """

    def __init__(self, url: str, events: list[Event]) -> None:
        host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        buffered = b""
        while b"\r\n\r\n" not in buffered:
            buffered += self.sock.recv(65536)
        head, rest = buffered.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.ws = Connection(ConnectionType.CLIENT)
        self.ws.receive_data(rest)
        self.pending: list[str] = []
        self.partial: list[str] = []
        self.events = events
        self.author = events[0].pubkey
        self.latencies: list[float] = []

    def send(self, *frame: object) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(list(frame)))))

    def recv(self) -> list:
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("relay closed the connection")
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, TextMessage):  # wsproto hands over partial payloads
                    self.partial.append(event.data)
                    if event.message_finished:
                        self.pending.append("".join(self.partial))
                        self.partial.clear()
        return json.loads(self.pending.pop(0))

    def publish_all(self) -> None:
        for event in self.events:
            began = time.perf_counter()
            self.send("EVENT", event.to_json())
            reply = self.recv()
            self.latencies.append(time.perf_counter() - began)
            assert reply[0] == "OK" and reply[2] is True, reply

    def req(self, *filters: dict) -> tuple[float, int]:
        began = time.perf_counter()
        self.send("REQ", "bench", *filters)
        count = 0
        while self.recv()[0] != "EOSE":
            count += 1
        return time.perf_counter() - began, count

    def close(self) -> None:
        self.sock.close()


def run_phase(
    relay: RelayProcess, clients: list[BenchClient], work: Callable[[BenchClient], None]
) -> tuple[float, float]:
    """Run ``work`` on every client at once; (wall seconds, relay CPU percent)."""
    go = gevent.event.Event()

    def worker(client: BenchClient) -> None:
        go.wait()
        work(client)

    greenlets = [gevent.spawn(worker, client) for client in clients]
    gevent.sleep(0)  # let every worker reach the start line
    cpu_before, began = relay_cpu_seconds(relay.pid), time.perf_counter()
    go.set()
    gevent.joinall(greenlets, raise_error=True)
    wall = time.perf_counter() - began
    return wall, 100 * (relay_cpu_seconds(relay.pid) - cpu_before) / wall


def prepare(relay: RelayProcess, n_events: int) -> list[Event]:
    """One author's repository served by the relay, and ``n_events`` signed issues for it.

    The relay is a GRASP relay: it accepts issues (kind 1621) that reference a served
    announcement, which :func:`accepted_repository` arranges (untimed).
    """
    secret = generate_secret_key()
    setup = RelayClient(relay.ws_url, timeout=30)
    try:
        repo = accepted_repository(
            setup, f"127.0.0.1:{relay.port}", secret, identifier=f"bench-{secret[:8]}"
        )
    finally:
        setup.close()
    return [
        issue(repo, secret, f"issue {i} " + "x" * 200, [["t", "bench"]]) for i in range(n_events)
    ]


def measure(relay: RelayProcess, n_clients: int, n_events: int, n_reqs: int) -> dict[str, float]:
    batches = [prepare(relay, n_events) for _ in range(n_clients)]
    clients = [BenchClient(relay.ws_url, batch) for batch in batches]
    try:
        wall, cpu = run_phase(relay, clients, BenchClient.publish_all)
        publish = [lat for c in clients for lat in c.latencies]
        own: list[float] = []
        everyone: list[float] = []

        def reqs(client: BenchClient) -> None:
            for _ in range(n_reqs):
                own.append(
                    client.req({"authors": [client.author], "kinds": [1621], "limit": 50})[0]
                )
                everyone.append(client.req({"kinds": [1621], "limit": 500})[0])

        req_wall, req_cpu = run_phase(relay, clients, reqs)
    finally:
        for client in clients:
            client.close()
    ms = 1000
    return {
        "EVENT->OK throughput (events/s)": len(publish) / wall,
        "EVENT->OK latency median (ms)": percentile(publish, 50) * ms,
        "EVENT->OK latency p95 (ms)": percentile(publish, 95) * ms,
        "relay CPU while publishing (%)": cpu,
        "REQ own 50 -> EOSE median (ms)": percentile(own, 50) * ms,
        "REQ own 50 -> EOSE p95 (ms)": percentile(own, 95) * ms,
        "REQ all 500 -> EOSE median (ms)": percentile(everyone, 50) * ms,
        "REQ all 500 -> EOSE p95 (ms)": percentile(everyone, 95) * ms,
        "REQs answered per second": 2 * n_clients * n_reqs / req_wall,
        "relay CPU while querying (%)": req_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--events", type=int, default=100, help="events published per client")
    parser.add_argument("--reqs", type=int, default=20, help="REQ pairs per client")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp,
        RelayProcess(
            Path(tmp) / "data", "--log-level", "WARNING", "--event-rate-limit", "0"
        ) as relay,
    ):
        many = measure(relay, args.clients, args.events, args.reqs)
        one = measure(relay, 1, args.events, args.reqs)
    header = f"{'':34} {'1 client':>12} {f'{args.clients} clients':>12} {'ratio':>8}"
    print(
        f"grasp-relay NIP-01 bench: {args.events} events per client, "
        f"{args.reqs} REQ pairs per client"
    )
    print(header)
    print("-" * len(header))
    for name, value in many.items():
        print(f"{name:34} {one[name]:12.1f} {value:12.1f} {value / one[name]:8.2f}")


if __name__ == "__main__":
    main()
