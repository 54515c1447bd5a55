"""Run nostr-sdk (rust-nostr's asyncio bindings) from a gevent-patched test process.

nostr-sdk is asyncio-only and calls back into Python from its own Rust threads (a database
implemented through the foreign-trait layer, e.g. ``NostrLmdb`` handed to ``ClientBuilder``).
Those callbacks need the loop registered with ``uniffi_set_event_loop`` — without it they fail
with "no running event loop" and the sync times out. So every coroutine runs on one real OS
thread of a ``gevent.threadpool.ThreadPool`` under ``asyncio.run`` with its loop registered
(python-ecosystem.md §4); the gevent hub, where our own servers live, keeps running meanwhile.

    with SdkThread() as sdk:
        relay, url = sdk.run(start_local_relay)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import gevent.threadpool
import nostr_sdk

T = TypeVar("T")


class SdkThread:
    """One OS thread that runs nostr-sdk coroutines to completion, one at a time."""

    def __init__(self) -> None:
        self._pool = gevent.threadpool.ThreadPool(1)

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
        """``asyncio.run(make())`` on the SDK thread; the calling greenlet waits cooperatively."""

        async def main() -> T:
            nostr_sdk.uniffi_set_event_loop(asyncio.get_running_loop())
            try:
                return await make()
            finally:
                nostr_sdk.uniffi_set_event_loop(None)  # type: ignore[arg-type]

        return self._pool.spawn(asyncio.run, main()).get(timeout=timeout)

    def close(self) -> None:
        self._pool.kill()

    def __enter__(self) -> SdkThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def local_relay(sdk: SdkThread) -> Iterator[str]:
    """nostr-sdk's own in-process relay on 127.0.0.1 (rate limits off); yields its ws URL."""

    async def start() -> tuple[nostr_sdk.LocalRelay, str]:
        limit = nostr_sdk.RateLimit(max_reqs=10_000, notes_per_minute=10**9)
        relay = nostr_sdk.LocalRelayBuilder().addr("127.0.0.1").rate_limit(limit).build()
        await relay.run()
        return relay, str(await relay.url())

    relay, url = sdk.run(start)
    try:
        yield url
    finally:
        relay.shutdown()
