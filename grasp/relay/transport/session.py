"""One client's NIP-01 conversation (S10.1): EVENT -> OK, REQ -> stored, EOSE, live; CLOSE.

The session is transport-free: it reads text frames and writes text frames through an
:class:`~grasp.relay.transport.hub.Outbox`, so the unit tests drive it with a list instead of
a socket.

Answers to malformed input, decided once here:

* Frames that are not JSON, not a non-empty array, or have an unknown verb -> ``NOTICE`` with an
  ``invalid:`` text (there is nothing to correlate an ``OK``/``CLOSED`` with).
* ``EVENT`` -> always ``["OK", id, bool, message]`` with four elements, using the event's ``id``
  string as sent, even when it is not valid hex. Only when the frame carries no ``id`` string at all
  does the relay send a ``NOTICE`` instead: an ``OK`` with an invented id could not be matched by
  the client to anything it sent, and NIP-01 prefers ``NOTICE`` for unparsable input.
* ``REQ`` with a bad subscription id (not 1..64 characters), a bad filter, or one subscription too
  many -> ``CLOSED`` with ``invalid:``/``blocked:``; a non-string id can only get a ``NOTICE``.
* ``COUNT`` (NIP-45, not offered) -> ``CLOSED "error: ..."``, because NIP-45 requires ``CLOSED``
  for a refused COUNT and clients wait for it.
* ``EVENT`` past the connection's rate limit (S15.5, :mod:`.ratelimit`) -> ``OK false
  "rate-limited: ..."`` before the signature is even checked: a flood costs us no crypto.
* ``NEG-OPEN``/``NEG-MSG``/``NEG-CLOSE`` (NIP-77, S17.3) go to the connection's own
  :class:`~grasp.nostr.nip77.NegentropyResponder` when the context offers one: malformed frames
  get ``NEG-ERR "invalid: ..."`` (or a ``NOTICE`` without a usable sub id), too many records or
  sessions ``NEG-ERR "blocked: ..."``; its sessions end with the connection. Without one they
  are unknown verbs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from grasp.admission.intake import EventSource, WritePolicy
from grasp.nostr.event import Event, InvalidEvent
from grasp.nostr.filters import Filter, InvalidFilter
from grasp.nostr.nip77 import NegentropyResponder
from grasp.nostr.results import Prefix, Result
from grasp.relay.transport.hub import Outbox, SubscriptionHub, event_frame
from grasp.relay.transport.ratelimit import DEFAULT_EVENTS_PER_MINUTE, EventRateLimiter

logger = logging.getLogger(__name__)

#: Stored events matching the filters (each capped at ``limit_cap``), newest first:
#: ``EventStore.query``.
QueryEvents = Callable[[Sequence[Filter], int], list[Event]]
#: The same as JSON texts: ``EventStore.query_json``. Preferred when available: splicing stored
#: JSON into EVENT frames costs 2.5x less CPU than decoding and re-encoding every event of a REQ.
QueryEventTexts = Callable[[Sequence[Filter], int], list[str]]


@dataclass(frozen=True)
class SessionLimits:
    """NIP-01 limits of one connection (S10.1); also published in NIP-11 ``limitation``."""

    max_subscriptions: int = 20
    max_limit: int = 500
    max_subid_length: int = 64
    #: EVENT messages per minute per connection (S15.5); 0 turns the limit off.
    max_events_per_minute: int = DEFAULT_EVENTS_PER_MINUTE


@dataclass(frozen=True)
class SessionContext:
    """What every session of a relay shares: the write policy, the store query and the hub."""

    accept_event: WritePolicy
    query: QueryEvents
    hub: SubscriptionHub
    limits: SessionLimits = SessionLimits()
    #: Optional faster form of :attr:`query`; used instead of it when given.
    query_json: QueryEventTexts | None = None
    #: Monotonic seconds, for the event rate limit.
    clock: Callable[[], float] = time.monotonic
    #: A new NIP-77 responder for each connection (S17.3); None: NEG-* are unknown verbs.
    negentropy: Callable[[], NegentropyResponder] | None = None

    def stored_texts(self, filters: Sequence[Filter]) -> list[str]:
        """JSON texts of the stored events a REQ gets before EOSE (``limit`` clamped, S10.1)."""
        if self.query_json is not None:
            return self.query_json(filters, self.limits.max_limit)
        return [event.to_json_text() for event in self.query(filters, self.limits.max_limit)]


def _dumps(frame: list[Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def notice_frame(message: str) -> str:
    return _dumps(["NOTICE", message])


def ok_frame(event_id: str, result: Result) -> str:
    return _dumps(result.to_wire(event_id))


def closed_frame(sub_id: str, message: str) -> str:
    return _dumps(["CLOSED", sub_id, message])


def eose_frame(sub_id: str) -> str:
    return _dumps(["EOSE", sub_id])


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _short(value: object, width: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 3] + "..."


class Nip01Session:
    """The NIP-01 state of one connection: its open subscriptions live in the shared hub."""

    def __init__(self, outbox: Outbox, context: SessionContext, peer: str = "-") -> None:
        self._out = outbox
        self._ctx = context
        self._peer = peer
        self._rate = EventRateLimiter(context.limits.max_events_per_minute)
        self._handlers: dict[str, Callable[[list[Any]], None]] = {
            "EVENT": self._on_event,
            "REQ": self._on_req,
            "CLOSE": self._on_close_sub,
            "COUNT": self._on_count,
        }
        self._negentropy = context.negentropy() if context.negentropy is not None else None
        if self._negentropy is not None:
            for verb in ("NEG-OPEN", "NEG-MSG", "NEG-CLOSE", "NEG-ERR"):
                self._handlers[verb] = self._on_negentropy

    # --- MessageListener ---------------------------------------------------------------------

    def on_text(self, text: str) -> None:
        try:
            message = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            self._notice("invalid: message is not valid JSON")
            return
        if not isinstance(message, list) or not message:
            self._notice("invalid: message must be a non-empty JSON array")
            return
        verb = message[0]
        handler = self._handlers.get(verb) if isinstance(verb, str) else None
        if handler is None:
            self._notice(f"invalid: unknown message type {_short(verb)}")
            return
        handler(message)

    def on_binary(self, data: bytes) -> None:
        self._notice("invalid: binary messages are not supported, send JSON text")

    def on_close(self) -> None:
        if self._negentropy is not None:
            self._negentropy.close_all()
        dropped = self._ctx.hub.unsubscribe_all(self._out)
        logger.debug("session %s ended, %d subscriptions dropped", self._peer, dropped)

    def farewell(self, reason: str) -> str | None:
        return notice_frame(f"error: closing connection: {reason}")

    # --- verbs -------------------------------------------------------------------------------

    def _on_event(self, message: list[Any]) -> None:
        raw = message[1] if len(message) > 1 else None
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        event_id = raw_id if isinstance(raw_id, str) else None
        if len(message) != 2:
            self._answer_invalid(
                event_id, Prefix.INVALID.wire("EVENT must carry exactly one event")
            )
            return
        limited = self._rate.check(self._ctx.clock())
        if limited is not None:
            logger.debug("EVENT from %s rate-limited", self._peer)
            self._answer_invalid(event_id, limited.message)
            return
        try:
            event = Event.from_json(raw)
        except InvalidEvent as exc:
            self._answer_invalid(exc.event_id, exc.message)
            return
        self._send(ok_frame(event.id, self._accept(event)))

    def _answer_invalid(self, event_id: str | None, message: str) -> None:
        if event_id is None:
            self._notice(f"{message} (no event id to answer OK to)")
        else:
            self._send(ok_frame(event_id, Result(False, message)))

    def _accept(self, event: Event) -> Result:
        try:
            result = self._ctx.accept_event(event, EventSource.CLIENT)
        except Exception:
            logger.exception("write policy failed on event %s", event.id)
            return Result.reject(Prefix.ERROR, "internal error while processing the event")
        logger.debug(
            "EVENT %s from %s -> %s %r", event.id, self._peer, result.accepted, result.message
        )
        return result

    def _on_req(self, message: list[Any]) -> None:
        sub_id = self._subscription_id(message, "REQ")
        if sub_id is None:
            return
        filters = self._filters(sub_id, message[2:])
        if filters is None:
            return
        hub, limits = self._ctx.hub, self._ctx.limits
        if not hub.has(self._out, sub_id) and hub.count(self._out) >= limits.max_subscriptions:
            self._send(
                closed_frame(
                    sub_id,
                    Prefix.BLOCKED.wire(
                        f"too many subscriptions "
                        f"(at most {limits.max_subscriptions} per connection)"
                    ),
                )
            )
            return
        self._serve_req(sub_id, filters)

    def _subscription_id(self, message: list[Any], verb: str) -> str | None:
        """The subscription id of REQ/COUNT/CLOSE, or None after answering why it is unusable."""
        sub_id = message[1] if len(message) > 1 else None
        if not isinstance(sub_id, str):
            self._notice(f"invalid: {verb} needs a subscription id string")
            return None
        if not 1 <= len(sub_id) <= self._ctx.limits.max_subid_length:
            text = f"subscription id must be 1 to {self._ctx.limits.max_subid_length} characters"
            self._send(closed_frame(sub_id, Prefix.INVALID.wire(text)))
            return None
        return sub_id

    def _filters(self, sub_id: str, raw: list[Any]) -> list[Filter] | None:
        """Parse every filter or answer CLOSED (and drop a subscription the REQ would replace)."""
        error = Prefix.INVALID.wire("REQ needs at least one filter") if not raw else None
        filters: list[Filter] = []
        for obj in raw:
            try:
                filters.append(Filter.from_json(obj))
            except InvalidFilter as exc:
                error = exc.message
                break
        if error is None:
            return filters
        self._ctx.hub.unsubscribe(self._out, sub_id)
        self._send(closed_frame(sub_id, error))
        return None

    def _serve_req(self, sub_id: str, filters: list[Filter]) -> None:
        # Subscribe first, so nothing published during the query is missed (see hub docstring).
        subscription = self._ctx.hub.subscribe(self._out, sub_id, filters)
        try:
            stored = self._ctx.stored_texts(filters)
        except Exception:
            logger.exception("query for %s of %s failed", sub_id, self._peer)
            self._ctx.hub.unsubscribe(self._out, sub_id)
            self._send(closed_frame(sub_id, Prefix.ERROR.wire("could not query stored events")))
            return
        for event_json in stored:
            # Re-read the set each time: sends may wait for room while live events arrive.
            live = subscription.live_before_eose
            if live and json.loads(event_json)["id"] in live:
                continue
            if not self._send(event_frame(sub_id, event_json)):
                return  # connection is closing
        self._send(eose_frame(sub_id))
        subscription.end_of_stored_events()
        logger.debug("REQ %s from %s: %d stored events", sub_id, self._peer, len(stored))

    def _on_close_sub(self, message: list[Any]) -> None:
        sub_id = message[1] if len(message) == 2 else None
        if not isinstance(sub_id, str):
            self._notice("invalid: CLOSE needs exactly one subscription id string")
            return
        self._ctx.hub.unsubscribe(self._out, sub_id)

    def _on_count(self, message: list[Any]) -> None:
        sub_id = self._subscription_id(message, "COUNT")
        if sub_id is not None:
            self._send(closed_frame(sub_id, Prefix.ERROR.wire("COUNT (NIP-45) is not supported")))

    def _on_negentropy(self, message: list[Any]) -> None:
        """NIP-77: the responder answers every frame but NEG-CLOSE (S17.3)."""
        assert self._negentropy is not None
        try:
            reply = self._negentropy.handle(message)
        except Exception:
            logger.exception("NIP-77 %s from %s failed", message[0], self._peer)
            sub_id = message[1] if len(message) > 1 and isinstance(message[1], str) else None
            self._negentropy.close(sub_id or "")
            text = Prefix.ERROR.wire("could not reconcile")
            self._send(_dumps(["NEG-ERR", sub_id, text]) if sub_id else notice_frame(text))
            return
        if reply is not None:
            if reply[0] == "NEG-ERR":
                logger.debug("NEG-ERR to %s: %s", self._peer, reply[2])
            self._send(_dumps(reply))

    # --- output ------------------------------------------------------------------------------

    def _notice(self, message: str) -> None:
        logger.debug("NOTICE to %s: %s", self._peer, message)
        self._send(notice_frame(message))

    def _send(self, text: str) -> bool:
        return self._out.send(text)
