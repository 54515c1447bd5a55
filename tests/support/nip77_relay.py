"""A test-only Nostr relay that answers NIP-77 with our :class:`NegentropyResponder`.

Just enough NIP-01 for a real client's sync to finish (EVENT → OK, REQ → EVENT… EOSE, CLOSE)
over an in-memory event set, on :class:`tests.support.wsserver.TextSocketServer`. It exists
so an independent client (nostr-sdk's ``Client.sync``) can reconcile against our responder
without the project's relay transport, which is being moved. Every frame verb received is
counted in :attr:`MiniNip77Relay.verbs` so tests can prove NIP-77 was really spoken.

    with MiniNip77Relay(events) as relay:
        ...connect to relay.url...
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Iterable
from typing import Any

from grasp.nostr.event import Event, InvalidEvent
from grasp.nostr.filters import Filter, InvalidFilter
from grasp.nostr.nip77 import DEFAULT_FRAME_SIZE_LIMIT, NegentropyResponder
from tests.support.wsserver import Send, TextSocketServer

logger = logging.getLogger(__name__)


class MiniNip77Relay:
    """In-memory events, our responder per connection, on 127.0.0.1 port 0."""

    def __init__(
        self,
        events: Iterable[Event] = (),
        *,
        frame_size_limit: int = DEFAULT_FRAME_SIZE_LIMIT,
        max_records: int = 100_000,
        nip77: bool = True,
    ) -> None:
        """``nip77=False`` answers NEG-* like a relay without NIP-77 (a NOTICE)."""
        self.events: dict[str, Event] = {event.id: event for event in events}
        self.frame_size_limit = frame_size_limit
        self.max_records = max_records
        self.verbs: collections.Counter[str] = collections.Counter()
        #: Event ids asked for by ``ids`` filters (how much a reconciliation made us send).
        self.requested_ids = 0
        self.nip77 = nip77
        #: UTF-8 bytes of text frames received and sent (what a sync costs on the wire).
        self.bytes_in = 0
        self.bytes_out = 0
        self._server = TextSocketServer(self._session)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> MiniNip77Relay:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def items_for(self, flt: Filter) -> list[tuple[int, str]]:
        """What the real relay's store query will give the responder."""
        return [(e.created_at, e.id) for e in self.events.values() if flt.matches(e)]

    def matching(self, filters: list[Filter]) -> list[Event]:
        """NIP-01: the union of each filter's newest ``limit`` (``limit: 0`` gives nothing)."""
        found: dict[str, Event] = {}
        for flt in filters:
            hits = sorted(
                (e for e in self.events.values() if flt.matches(e)),
                key=lambda e: (-e.created_at, e.id),
            )
            for event in hits if flt.limit is None else hits[: flt.limit]:
                found[event.id] = event
        return sorted(found.values(), key=lambda e: (-e.created_at, e.id))

    def _session(self, send: Send) -> _Session:
        return _Session(self, send)


class _Session:
    def __init__(self, relay: MiniNip77Relay, send: Send) -> None:
        self._relay = relay
        self._send = send
        self._responder = NegentropyResponder(
            relay.items_for,
            frame_size_limit=relay.frame_size_limit,
            max_records=relay.max_records,
        )

    def on_text(self, text: str) -> None:
        self._relay.bytes_in += len(text.encode())
        try:
            frame = json.loads(text)
            verb = frame[0]
        except (ValueError, IndexError, KeyError, TypeError):
            self._reply(["NOTICE", "invalid: not a JSON array"])
            return
        self._relay.verbs[str(verb)] += 1
        if isinstance(verb, str) and verb.startswith("NEG-") and self._relay.nip77:
            reply = self._responder.handle(frame)
            if reply is not None:
                self._reply(reply)
        elif verb == "EVENT":
            self._on_event(frame)
        elif verb == "REQ":
            self._on_req(frame)
        elif verb != "CLOSE":
            self._reply(["NOTICE", f"invalid: unknown verb {verb!r}"])

    def on_close(self) -> None:
        self._responder.close_all()

    def _on_event(self, frame: list[Any]) -> None:
        try:
            event = Event.from_json(frame[1])
        except (InvalidEvent, IndexError) as exc:
            self._reply(["NOTICE", str(exc)])
            return
        self._relay.events[event.id] = event
        self._reply(["OK", event.id, True, ""])

    def _on_req(self, frame: list[Any]) -> None:
        sub_id = frame[1]
        try:
            filters = [Filter.from_json(f) for f in frame[2:]]
        except InvalidFilter as exc:
            self._reply(["CLOSED", sub_id, exc.message])
            return
        self._relay.requested_ids += sum(len(f.ids) for f in filters if f.ids is not None)
        for event in self._relay.matching(filters):
            self._reply(["EVENT", sub_id, event.to_json()])
        self._reply(["EOSE", sub_id])

    def _reply(self, frame: list[Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        self._relay.bytes_out += len(text.encode())
        self._send(text)
