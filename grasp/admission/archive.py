"""GRASP-05 archive mode (S17.5): which repositories this relay keeps a read-only copy of.

GRASP-01 L9 exempts a GRASP-05 server from refusing announcements that do not list it. Here
the operator says which: ``--archive`` rules (the shapes of curation's repository rules,
``npub``, ``npub/identifier`` or ``identifier``) or ``--archive-all``. An announcement they
cover is accepted even without naming this relay; its repository is then filled by purgatory
sync from the announcement's own clone URLs and served, but never pushed to here: the
maintainers push to the servers they listed, and this relay follows them.

"Archived" is never stored as a flag. It is derived every time from the configuration and the
announcement itself (:meth:`Archive.archives`): covered by a rule *and* not listing this relay.
So it survives restarts without a migration, and a maintainer who later lists this relay in
the announcement turns the archive into an ordinary, pushable repository.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from grasp.admission import rules
from grasp.admission.curation import RepoRule
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.nip34 import Announcement

logger = logging.getLogger(__name__)

__all__ = ["Archive"]


@dataclass(frozen=True)
class Archive:
    """The operator's archive rules; empty and not ``everything`` means no archive mode."""

    rules: tuple[RepoRule, ...] = ()
    #: ``--archive-all``: every well-formed announcement is covered.
    everything: bool = False

    @classmethod
    def from_texts(cls, texts: Iterable[str] = (), *, everything: bool = False) -> Archive:
        """Rules as written on the command line; ValueError names a malformed one."""
        return cls(tuple(RepoRule.parse(text) for text in texts), everything)

    @property
    def active(self) -> bool:
        """Whether this relay is a GRASP-05 archive at all (NIP-11 advertises it then)."""
        return self.everything or bool(self.rules)

    def covers(self, owner: str, identifier: str) -> bool:
        """Does a rule (or ``--archive-all``) name this repository?"""
        return self.everything or any(rule.matches(owner, identifier) for rule in self.rules)

    def archives(self, announcement: Announcement, domain: str) -> bool:
        """S17.5: accepted as an archive, hence read-only — covered by a rule and not listing
        this relay (one that lists us is hosted the ordinary GRASP-01 way, pushes allowed)."""
        return self.covers(announcement.owner, announcement.identifier) and not (
            rules.lists_this_service(announcement, domain)
        )

    def push_refusal(self, announcement: Announcement) -> str:
        """The ``remote:`` line a push to an archived repository gets: why, and where to go."""
        name = f"{npub_encode(announcement.owner)}/{announcement.identifier}"
        elsewhere = next(iter(announcement.clone_urls), None)
        advice = f"; push to {elsewhere}" if elsewhere else ""
        return (
            f"{name} is a read-only archive on this relay (GRASP-05): it copies the "
            f"repository from its announced clone URLs{advice}"
        )

    def summary(self) -> str | None:
        """The read-only scope for NIP-11 ``curation`` (S17.5), or None without archive mode."""
        if not self.active:
            return None
        if self.everything:
            scope = "every announced repository"
        else:
            scope = "these repositories: " + ", ".join(str(rule) for rule in self.rules)
        return (
            f"Archive (GRASP-05): {scope} is accepted without listing this relay and kept "
            "read-only here (pushes refused), filled from its announced clone URLs."
        )
