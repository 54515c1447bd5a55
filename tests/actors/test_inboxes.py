"""Typed inboxes: each actor handles exactly the messages of its inbox union in ``messages/``.

A message added to an inbox without a handler, a handler for a message outside its inbox, or a
new message that belongs to no inbox fails here (ARCHITECTURE §3, §8).
"""

import typing

import pytest

from actors.base import BaseActor
from actors.domain import DomainThrottle
from actors.fetch import FetchActor
from actors.releaser import Releaser
from actors.scheduler import Scheduler
from actors.supervisor import Supervisor
from messages import registered
from messages.fetch import FetchMsg
from messages.releaser import ReleaserMsg
from messages.scheduler import SchedulerMsg
from messages.supervisor import SupervisorMsg
from messages.throttle import DomainThrottleMsg

INBOXES = {
    Scheduler: SchedulerMsg,
    DomainThrottle: DomainThrottleMsg,
    FetchActor: FetchMsg,
    Releaser: ReleaserMsg,
    Supervisor: SupervisorMsg,
}
#: Messages that are not anyone's inbox: replies, lifecycle and trace-only lines, port data.
NOT_INBOX = {
    "ProcessResult",
    "SchedulerStatus",
    "ThrottleStatus",
    "SyncHistoryReport",
    "IdentifierHistory",
    "AttemptRecord",
    "UrlRecord",  # replies to asks
    "Ping",
    "ActorStarted",
    "Reply",  # every actor's lifecycle, trace markers
    "RepositoryData",
    "AnnouncementInfo",
    "LedgerAnswer",  # a port answer (S19.2), like RepositoryData
    "FetchResult",
    "PortAnswer",  # the port, as traced
}


@pytest.mark.parametrize("actor", list(INBOXES), ids=lambda a: a.__name__)
def test_handled_types_equal_the_inbox_union(actor: type[BaseActor]):
    assert actor.handled_types() == frozenset(typing.get_args(INBOXES[actor]))


def test_every_message_is_in_exactly_one_inbox_or_named_as_no_inbox():
    owners: dict[str, list[str]] = {}
    for actor, union in INBOXES.items():
        for msg_type in typing.get_args(union):
            owners.setdefault(msg_type.__name__, []).append(actor.__name__)
    assert {name: o for name, o in owners.items() if len(o) > 1} == {}
    assert set(registered()) == set(owners) | NOT_INBOX


def test_a_handler_is_registered_by_its_decorator():
    """The registration follows the method: a subclass that adds one message handles it."""
    from actors.base import handles
    from messages.scheduler import Tick

    class Probe(Releaser):
        @handles(Tick)
        def on_tick(self, msg, now):  # pragma: no cover - only registered, never called
            pass

    assert Probe.handled_types() == Releaser.handled_types() | {Tick}
