"""The actor protocol: one module per actor inbox, every message a frozen dataclass.

``messages`` imports nothing of ours; ``actors`` and ``grasp`` import it. ``to_json`` and
``from_json`` round-trip every message (the type name travels in ``"type"``).
"""

from . import fetch, history, lifecycle, port, releaser, scheduler, supervisor, throttle
from ._base import UnknownMessageError, from_json, registered, to_json

__all__ = [
    "UnknownMessageError",
    "fetch",
    "from_json",
    "history",
    "lifecycle",
    "port",
    "registered",
    "releaser",
    "scheduler",
    "supervisor",
    "throttle",
    "to_json",
]
