"""Messages that only appear in traces: the value an ``ask`` returned (S13.3)."""

from __future__ import annotations

from typing import Any

from ._base import message


@message
class Reply:
    """The answer to an ask of type ``request``; ``value`` is JSON-ready or a message."""

    request: str
    value: Any = None
