"""Every actor message is a frozen dataclass with a JSON round trip (ARCHITECTURE §3, S13.3)."""

import dataclasses
import json
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import messages
from messages import UnknownMessageError, from_json, registered, to_json
from messages.releaser import ProcessResult
from messages.supervisor import ChildFailed
from messages.throttle import EnqueueIdentifier, QueuedFetchDone

ALL = sorted(registered().items())


def test_every_inbox_module_is_registered():
    names = set(registered())
    for expected in (
        "EnqueueSync",
        "Tick",
        "WakeUp",
        "SyncFinished",  # Scheduler
        "TryStart",
        "RequestDone",
        "EnqueueIdentifier",
        "QueuedFetchDone",
        "WindowFreed",  # DomainThrottle
        "SyncIdentifier",
        "FetchFromDomain",  # FetchActor
        "ProcessSatisfiable",
        "GitDataArrived",
        "EnqueuePending",  # Releaser
        "ChildFailed",
        "RestartChild",
        "Shutdown",  # Supervisor
        "RepositoryData",
        "AnnouncementInfo",
        "PortAnswer",  # the port, as traced
    ):
        assert expected in names


@pytest.mark.parametrize(("name", "cls"), ALL)
def test_messages_are_frozen_and_slotted(name, cls):
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen
    assert hasattr(cls, "__slots__")


def _strategy(hint):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is str:
        return st.text(max_size=20)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(-(2**40), 2**40)
    if hint is float:
        return st.floats(allow_nan=False, allow_infinity=False, width=64)
    if origin is frozenset:
        return st.frozensets(_strategy(args[0]), max_size=4)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(_strategy(args[0]), max_size=4).map(tuple)
    if origin is tuple:
        return st.tuples(*map(_strategy, args))
    if origin in (typing.Union, __import__("types").UnionType):
        return st.one_of(*(st.none() if a is type(None) else _strategy(a) for a in args))
    if hint is typing.Any:
        return st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=5),
            st.builds(EnqueueIdentifier, st.text(max_size=5)),
        )
    if isinstance(hint, type) and registered().get(hint.__name__) is hint:
        return _message_strategy(hint)  # a message nested in a message (RepositoryData)
    raise AssertionError(f"no strategy for {hint}")


def _message_strategy(cls):
    hints = typing.get_type_hints(cls)
    fields = {f.name: _strategy(hints[f.name]) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


@pytest.mark.parametrize(("name", "cls"), ALL)
def test_json_round_trip(name, cls):
    # Nested replies (SyncHistoryReport holds tuples of messages of tuples) are slow to
    # generate on a busy machine: no deadline, no too-slow health check, fewer examples.
    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
    @given(_message_strategy(cls))
    def check(msg):
        encoded = json.loads(json.dumps(to_json(msg)))
        assert encoded["type"] == name
        assert from_json(encoded) == msg

    check()


def test_nested_message_round_trips():
    failed = ChildFailed("DomainThrottle[x]", "boom", QueuedFetchDone("id", None))
    assert from_json(json.loads(json.dumps(to_json(failed)))) == failed
    result = ProcessResult(1, 2, 3, ("e",))
    assert from_json(to_json(result)).released_any


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"type": "NoSuchMessage"}, "unknown message type 'NoSuchMessage'"),
        ({"identifier": "x"}, "string 'type'"),
        ([1, 2], "string 'type'"),
        (
            {"type": "EnqueueSync", "identifier": "x", "reason": "user", "extra": 2},
            "unknown fields",
        ),
        ({"type": "EnqueueSync", "identifier": "x"}, "malformed EnqueueSync"),
        ({"type": "EnqueueSync", "identifier": "x", "reason": "whim"}, "unknown sync reason"),
    ],
)
def test_bad_json_is_rejected_clearly(obj, fragment):
    with pytest.raises(UnknownMessageError, match=fragment):
        from_json(obj)


def test_encoding_an_unregistered_object_fails():
    with pytest.raises(UnknownMessageError):
        to_json(object())
    assert messages.to_json is to_json


@pytest.mark.parametrize("name,cls", ALL)
def test_the_fast_init_takes_what_the_dataclass_init_takes(name, cls):
    """messages._base.fast_init replaces dataclasses' ``__init__`` (P4): the same parameters
    in the same order with the same defaults, every field set, and still frozen."""
    import inspect

    fields = dataclasses.fields(cls)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields
    ]
    required = {f.name: f"v-{f.name}" for f in fields if f.default is dataclasses.MISSING}
    if name == "EnqueueSync":
        required["reason"] = "user"  # checked by its __post_init__
    msg = cls(**required)
    for field in fields:
        expected = required.get(field.name, field.default)
        assert getattr(msg, field.name) == expected
    if fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(msg, fields[0].name, "changed")
    with pytest.raises(TypeError):
        cls(**required, not_a_field=1)


def test_the_fast_init_still_runs_post_init_checks():
    from messages.scheduler import EnqueueSync

    with pytest.raises(ValueError, match="unknown sync reason"):
        EnqueueSync("id", "bogus")  # type: ignore[arg-type]
