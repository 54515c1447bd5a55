"""What a short-lived FetchActor's inbox accepts: exactly one unit of work (ARCHITECTURE §3)."""

from __future__ import annotations

from ._base import message


@message
class SyncIdentifier:
    """Main path: run ``sync_identifier`` for ``identifier`` and report ``SyncFinished`` (S5.3).

    ``skip_urls`` count as tried from the start: URLs the fetch policy refused for this
    identifier, which are never contacted again (S18.2).
    """

    identifier: str
    skip_urls: frozenset[str] = frozenset()


@message
class FetchFromDomain:
    """Throttle path: the domain already reserved a slot; fetch ``identifier`` from one untried URL
    of ``domain`` and report ``QueuedFetchDone`` (S6.3)."""

    domain: str
    identifier: str
    tried_urls: frozenset[str] = frozenset()


FetchMsg = SyncIdentifier | FetchFromDomain
