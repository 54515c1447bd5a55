"""What crosses the port between the actors and the world (ARCHITECTURE §4), as messages.

``RepositoryData`` is what ``SyncContext.fetch_repository_data`` returns; ``PortAnswer`` is the
trace line of any port call's answer (S13.3), so replay can give an actor the same world again.
They are messages (frozen, slotted, in the codec) because traces carry them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._base import message

__all__ = ["AnnouncementInfo", "PortAnswer", "RepositoryData"]


@message
class AnnouncementInfo:
    """What sync needs of one repository announcement (kind 30617)."""

    owner: str
    identifier: str
    clone_urls: tuple[str, ...] = ()


@message
class RepositoryData:
    """The announcements of an identifier (store and announcement purgatory, any owner, in a
    deterministic order) plus the clone URLs of its held PR events (S3.1)."""

    identifier: str
    announcements: tuple[AnnouncementInfo, ...] = ()
    pr_clone_urls: tuple[str, ...] = ()

    def clone_urls(self) -> list[str]:
        """Every candidate URL once: announcement order, then PR order (S3.1)."""
        urls: Iterable[str] = (
            url for announcement in self.announcements for url in announcement.clone_urls
        )
        return list(dict.fromkeys([*urls, *self.pr_clone_urls]))


@message
class PortAnswer:
    """Trace line: the port answered ``method`` with ``value`` (JSON-ready or a message).

    A call that failed records ``failure`` — the fetch failure's reason (S7.2 kinds) with its
    ``url`` and ``detail`` — or ``error``, the ``repr`` of an unexpected exception (a bug).
    """

    method: str
    value: Any = None
    failure: str | None = None
    url: str | None = None
    detail: str | None = None
    error: str | None = None
