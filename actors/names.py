"""Actor names: the one place they are spelled.

Names are how actors find each other (the :class:`~actors.directory.Directory` maps a name to
the live ref, so a restarted actor is found under the same name), how log lines say who wrote
them, and what the ``from``/``to`` fields of a message trace hold (S13.3). Code elsewhere uses
these constants and helpers, never the literals.
"""

from __future__ import annotations

__all__ = [
    "EXTERNAL",
    "FETCH_ANY",
    "PORT",
    "RELEASER",
    "SCHEDULER",
    "SUPERVISOR",
    "SYSTEM",
    "TIMER",
    "fetch_name",
    "is_fetch_name",
    "parse_throttle_name",
    "recipient_key",
    "throttle_name",
]

SCHEDULER = "Scheduler"
RELEASER = "Releaser"
SUPERVISOR = "Supervisor"

#: Sender of messages from outside the actor system (the relay embedding it).
EXTERNAL = "relay"
#: Sender of timer deliveries.
TIMER = "timer"
#: Sender of lifecycle markers (``ActorStarted``).
SYSTEM = "system"
#: Receiver of recorded port answers (what the ``SyncContext`` returned to an actor).
PORT = "port"

_THROTTLE_PREFIX, _THROTTLE_SUFFIX = "DomainThrottle[", "]"
_FETCH_PREFIX = "FetchActor-"
#: FetchActor names number one process's spawns; traces compare them as one class.
FETCH_ANY = f"{_FETCH_PREFIX}*"


def throttle_name(domain: str) -> str:
    """The DomainThrottle of ``domain`` (one per remote host, S6)."""
    return f"{_THROTTLE_PREFIX}{domain}{_THROTTLE_SUFFIX}"


def parse_throttle_name(name: str) -> str | None:
    """The domain of a DomainThrottle name, or None for any other name."""
    if name.startswith(_THROTTLE_PREFIX) and name.endswith(_THROTTLE_SUFFIX):
        domain = name[len(_THROTTLE_PREFIX) : -len(_THROTTLE_SUFFIX)]
        return domain or None
    return None


def fetch_name(number: int) -> str:
    """The name of the ``number``-th FetchActor of a system."""
    return f"{_FETCH_PREFIX}{number}"


def is_fetch_name(name: str) -> bool:
    rest = name[len(_FETCH_PREFIX) :]
    return name.startswith(_FETCH_PREFIX) and (rest.isdigit() or rest == "*")


def recipient_key(name: str) -> str:
    """How a trace comparison names a recipient: every FetchActor is :data:`FETCH_ANY`."""
    return FETCH_ANY if is_fetch_name(name) else name
