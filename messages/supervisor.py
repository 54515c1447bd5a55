"""What the Supervisor's inbox accepts (ARCHITECTURE §3, supervision)."""

from __future__ import annotations

from typing import Any

from ._base import message


@message
class ChildFailed:
    """A child died on an unhandled exception while handling ``message`` (None if unknown)."""

    child: str
    error: str
    message: Any = None


@message
class RestartChild:
    """Timer: the backoff for restarting ``child`` has elapsed."""

    child: str


@message
class Shutdown:
    """Stop restarting children: the system is going down."""


SupervisorMsg = ChildFailed | RestartChild | Shutdown
