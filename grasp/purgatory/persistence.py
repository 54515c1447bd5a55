"""``purgatory-state.json``, version 1: how an older relay kept purgatory across a graceful
restart, read once on upgrade (S9.1 revised: the event database is the record now).

On the first start of this version, :func:`restore` reads the file left by the old relay's
shutdown, hands every entry to :meth:`PurgatoryStore.adopt` (one transaction into purgatory's
tables) and only then deletes the file, so a crash in between imports it again (adopt skips
what is already held). :func:`save` still writes the format, for tests of that path.

Lifetimes are stored as *remaining seconds* next to the wall-clock ``saved_at``, so restore can
subtract the downtime: an entry that would have expired while the relay was down is dropped
(and remembered as expired, as a sweep would have done), everything else keeps only what was
left of its 30 minutes. Events are re-verified on load (id and signature) because the file sits
on disk in the open. Placeholders of this format do not name their repository.

File format, version 1::

    {"version": 1, "saved_at": <unix seconds>, "expiry_secs": <configured lifetime>,
     "states":        [{"event": {...}, "source": "direct"|"sync", "remaining_secs": r}],
     "prs":           [{"event_id": hex, "commit": hex, "event": {...}|null, "source": ...,
     "remaining_secs": r}],
     "announcements": [{"event": {...}, "source": ..., "remaining_secs": r}],
     "expired":       {"<event id>": <seconds since it expired>}}
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grasp.nostr.event import Event, InvalidEvent
from grasp.nostr.nip34 import Announcement, Nip34Error, PullRequest, RepositoryState, is_oid
from grasp.purgatory.entries import HeldAnnouncement, HeldPlaceholder, HeldPr, HeldState, Source

if TYPE_CHECKING:
    from grasp.purgatory.store import PurgatoryStore

logger = logging.getLogger(__name__)

STATE_FILENAME = "purgatory-state.json"
VERSION = 1


class PurgatoryFileError(RuntimeError):
    """The state file cannot be restored (corrupt, wrong shape, unsupported version).

    The caller logs it and starts with an empty purgatory; the file is left for inspection.
    """


# --- save ---------------------------------------------------------------------------------------


def save(store: PurgatoryStore, path: Path) -> None:
    with store._lock:
        now = store.now()
        document: dict[str, Any] = {
            "version": VERSION,
            "saved_at": store.wall(),
            "expiry_secs": store.expiry_secs,
            "states": [
                _entry(h.state.event, h.source, h.expires_at - now)
                for by_id in store._states.values()
                for h in by_id.values()
            ],
            "prs": [
                *(_pr_entry(h, now) for h in store._prs.values()),
                *(_pr_entry(h, now) for h in store._placeholders.values()),
            ],
            "announcements": [
                _entry(h.announcement.event, h.source, h.expires_at - now)
                for h in store._announcements.values()
            ],
            "expired": {event_id: now - when for event_id, when in store._expired.items()},
        }
    _write_atomically(path, json.dumps(document, ensure_ascii=False, separators=(",", ":")))
    logger.info(
        "saved purgatory to %s: %d states, %d PR entries, %d announcements, %d expired ids",
        path,
        len(document["states"]),
        len(document["prs"]),
        len(document["announcements"]),
        len(document["expired"]),
    )


def _entry(event: Event, source: Source, remaining: float) -> dict[str, Any]:
    return {"event": event.to_json(), "source": source.value, "remaining_secs": max(0.0, remaining)}


def _pr_entry(held: HeldPr | HeldPlaceholder, now: float) -> dict[str, Any]:
    return {
        "event_id": held.event_id,
        "commit": held.commit,
        "event": held.pr.event.to_json() if isinstance(held, HeldPr) else None,
        "source": (held.source if isinstance(held, HeldPr) else Source.DIRECT).value,
        "remaining_secs": max(0.0, held.expires_at - now),
    }


def _write_atomically(path: Path, text: str) -> None:
    """Temp file in the same directory, fsync, rename: a
    crash leaves the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- restore ------------------------------------------------------------------------------------


@dataclass
class _Tally:
    entries: list[HeldState | HeldPr | HeldAnnouncement | HeldPlaceholder] = field(
        default_factory=list
    )
    expired: dict[str, float] = field(default_factory=dict)
    lapsed: int = 0
    invalid: int = 0


def restore(store: PurgatoryStore, path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise PurgatoryFileError(f"cannot read purgatory state file {path}: {exc}") from exc
    document = _parse_document(path, text)
    downtime = max(0.0, store.wall() - document["saved_at"])
    tally = _Tally()
    now = store.now()
    for raw in document["states"]:
        _restore_one(raw, now, downtime, tally, _load_state)
    for raw in document["prs"]:
        _restore_one(raw, now, downtime, tally, _load_pr)
    for raw in document["announcements"]:
        _restore_one(raw, now, downtime, tally, _load_announcement)
    for event_id, age in document["expired"].items():
        if isinstance(age, (int, float)) and age + downtime < store.expired_memory_secs:
            tally.expired.setdefault(event_id, now - (age + downtime))
    identifiers = store.adopt(tally.entries, tally.expired)
    path.unlink()  # only now: the entries are committed to the database
    logger.info(
        "imported purgatory from %s after %.0f s downtime: "
        "%d entries, %d expired meanwhile, %d invalid; the file is deleted",
        path,
        downtime,
        len(tally.entries),
        tally.lapsed,
        tally.invalid,
    )
    return identifiers


def _parse_document(path: Path, text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise PurgatoryFileError(f"corrupt purgatory state file {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise PurgatoryFileError(f"corrupt purgatory state file {path}: not a JSON object")
    version = document.get("version")
    if version != VERSION:
        raise PurgatoryFileError(f"unsupported purgatory state version {version!r} in {path}")
    saved_at = document.get("saved_at")
    if not isinstance(saved_at, (int, float)) or isinstance(saved_at, bool):
        raise PurgatoryFileError(f"corrupt purgatory state file {path}: bad 'saved_at'")
    for key, kind in (("states", list), ("prs", list), ("announcements", list), ("expired", dict)):
        document.setdefault(key, kind())
        if not isinstance(document[key], kind):
            raise PurgatoryFileError(
                f"corrupt purgatory state file {path}: {key!r} is not a {kind.__name__}"
            )
    return document


def _restore_one(raw, now, downtime, tally: _Tally, loader) -> None:
    """Validate one entry; a bad entry is skipped (logged), never fatal for the rest."""
    try:
        remaining = float(raw["remaining_secs"]) - downtime
        source = Source(raw.get("source", Source.DIRECT.value))
        entry = loader(raw, source, now + remaining)
    except (KeyError, TypeError, ValueError, AttributeError, InvalidEvent, Nip34Error) as exc:
        tally.invalid += 1
        logger.warning("skipping unusable purgatory entry: %s", exc)
        return
    if remaining > 0:
        tally.entries.append(entry)
        return
    tally.lapsed += 1
    if not isinstance(entry, HeldPlaceholder):  # expired while down: remembered, as a sweep would
        tally.expired[_entry_event_id(entry)] = now + remaining


def _entry_event_id(entry: HeldState | HeldPr | HeldAnnouncement) -> str:
    if isinstance(entry, HeldAnnouncement):
        return entry.announcement.event.id
    return entry.event_id


def _load_state(raw: dict, source: Source, expires_at: float) -> HeldState:
    return HeldState(RepositoryState.from_event(Event.from_json(raw["event"])), source, expires_at)


def _load_announcement(raw: dict, source: Source, expires_at: float) -> HeldAnnouncement:
    return HeldAnnouncement(
        Announcement.from_event(Event.from_json(raw["event"])), source, expires_at
    )


def _load_pr(raw: dict, source: Source, expires_at: float) -> HeldPr | HeldPlaceholder:
    if raw.get("event") is None:
        event_id, commit = raw["event_id"], raw["commit"]
        if not (
            isinstance(event_id, str)
            and len(event_id) == 64
            and is_oid(event_id)
            and is_oid(commit)
        ):
            raise ValueError(f"placeholder with bad id or commit: {event_id!r} {commit!r}")
        return HeldPlaceholder(event_id, commit, "", "", expires_at)
    pr = PullRequest.from_event(Event.from_json(raw["event"]))
    return HeldPr(pr.event_id, pr.commit, pr, source, expires_at)
