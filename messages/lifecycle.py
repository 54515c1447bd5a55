"""Messages every actor understands, and trace-only markers (S13.3)."""

from __future__ import annotations

from typing import Any

from ._base import message


@message
class Ping:
    """Ask: answered with the actor's name once its inbox reaches this message.

    Start-up asks each actor in order, so a broken start shows at once (Mopidy's habit).
    """


@message
class ActorStarted:
    """Trace marker: the actor began at this time (replay starts a fresh actor here)."""


@message
class Reply:
    """Trace line for the answer to an ask of type ``request``; ``value`` is JSON-ready or a
    message."""

    request: str
    value: Any = None
