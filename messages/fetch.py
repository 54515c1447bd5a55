"""What a short-lived FetchActor's inbox accepts: exactly one unit of work (ARCHITECTURE §3)."""

from __future__ import annotations

from ._base import message


@message
class SyncIdentifier:
    """Main path: run ``sync_identifier`` for ``identifier`` and report ``SyncFinished`` (S5.3)."""

    identifier: str


@message
class FetchFromDomain:
    """Throttle path: the domain already reserved a slot; fetch ``identifier`` from one untried URL
    of ``domain`` and report ``QueuedFetchDone`` (S6.3)."""

    domain: str
    identifier: str
    tried_urls: frozenset[str] = frozenset()


FetchMsg = SyncIdentifier | FetchFromDomain
