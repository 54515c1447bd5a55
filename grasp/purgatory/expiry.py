"""What an expiry sweep logs (S1.4, S13.2): a user's event expiring means a push never came
(INFO); synced events and placeholders expire quietly (DEBUG)."""

from __future__ import annotations

import logging

from grasp.purgatory.entries import HeldAnnouncement, HeldPlaceholder, HeldPr, HeldState, Source

logger = logging.getLogger(__name__)


def log_expired(
    states: list[HeldState],
    prs: list[HeldPr],
    announcements: list[HeldAnnouncement],
    placeholders: list[HeldPlaceholder],
) -> None:
    entries = [
        *(("state", h.state.identifier, h.event_id, h.source) for h in states),
        *(("PR", h.pr.identifier, h.event_id, h.source) for h in prs),
        *(
            ("announcement", h.announcement.identifier, h.announcement.event.id, h.source)
            for h in announcements
        ),
    ]
    for what, identifier, event_id, source in entries:
        level = logging.INFO if source is Source.DIRECT else logging.DEBUG
        logger.log(
            level,
            "expired %s %s of %s from purgatory (%s)",
            what,
            event_id,
            identifier,
            source.value,
        )
    for held in placeholders:
        logger.debug(
            "expired placeholder for refs/nostr/%s in %s (commit %s)",
            held.event_id,
            held.identifier or "an unrecorded repository",
            held.commit,
        )
    if states or prs or announcements or placeholders:
        logger.info(
            "purgatory expiry removed %d states, %d PR entries, %d announcements, %d placeholders",
            len(states),
            len(prs),
            len(announcements),
            len(placeholders),
        )
