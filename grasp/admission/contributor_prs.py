"""GRASP-06 contributor PRs (S16.1, protocol.md §4.9): the admission side, as pure rules and the
port the write policy calls.

A contributor without an announcement of their own pushes the PR tip to
``/prs/<their npub>/<identifier>.git`` on this relay and publishes the 1618/1619 with that URL in
its ``clone`` tag. GRASP-06 L21-24: such a PR is accepted even when GRASP-01 would refuse it for
naming no accepted announcement, provided its ``a`` tag is ``30617:<pubkey>:<identifier>`` and
its ``clone`` tag names this service's ``/prs/<signer-npub>/<identifier>.git``. Without such a
``clone`` tag the GRASP-01 rules apply unchanged (L23).

What the rules here decide, and why each is a refusal rather than silence: a ``clone`` URL of
this relay's ``/prs/`` that names *another* key than the signer, or an identifier none of the
``a`` tags names, is a claim about where the data lives that this relay knows to be false; the
event is refused (``invalid:``) with what does not match. The git side
(``grasp.relay.git_service.prs``) implements :class:`ContributorPrs`: where the pushed tip of an
accepted PR can be read, and
deleting a pushed ref whose commit is not the event's ``c`` (the signed event wins).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote

from grasp.nostr.bech32 import Bech32Error, npub_decode
from grasp.nostr.nip34 import PullRequest
from grasp.nostr.results import Prefix, Result

logger = logging.getLogger(__name__)

__all__ = ["ContributorPrs", "PrsUrl", "check_submission", "is_submission", "prs_urls"]

_PRS_PATH = re.compile(r"/prs/(?P<npub>[^/]+)/(?P<name>[^/]+)\.git/?")


class ContributorPrs(Protocol):
    """What the write policy asks of the GRASP-06 git side (``grasp.relay.git_service.prs``
    offers it)."""

    def sources(self, pr: PullRequest) -> list[Path]:
        """The ``/prs/`` repositories of ``pr``'s valid submission URLs that exist on disk."""
        ...

    def reconcile(self, pr: PullRequest) -> None:
        """Delete a ``refs/nostr/<pr id>`` pushed to ``/prs/`` with another commit than the
        event's ``c`` (and the placeholder it left); remove a repository left without refs."""
        ...


@dataclass(frozen=True)
class PrsUrl:
    """A ``clone`` URL of a PR that names this relay's ``/prs/`` endpoint."""

    url: str
    npub: str
    owner: str | None  # hex of the npub, None when it is no valid npub
    identifier: str


def prs_urls(pr: PullRequest, domain: str) -> list[PrsUrl]:
    """The PR's ``clone`` URLs that point at ``http(s)://<domain>/prs/...`` (percent-decoded)."""
    found = []
    for url in pr.clone_urls:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            continue
        authority, slash, path = rest.partition("/")
        match = _PRS_PATH.fullmatch(unquote("/" + path)) if slash else None
        if authority.lower() != domain.lower() or match is None:
            continue
        try:
            owner: str | None = npub_decode(match["npub"])
        except Bech32Error:
            owner = None
        found.append(PrsUrl(url, match["npub"], owner, match["name"]))
    return found


def check_submission(pr: PullRequest, domain: str) -> Result | None:
    """Refuse a PR whose ``/prs/`` clone URL on this relay names another key than its signer
    or an identifier that none of its ``a`` tags names (S16.1)."""
    for target in prs_urls(pr, domain):
        if target.owner != pr.event.pubkey:
            return Result.reject(
                Prefix.INVALID,
                f"GRASP-06: clone URL {target.url} is the /prs/ repository of {target.npub}, "
                "but this event is signed by another key",
            )
        if target.identifier not in pr.identifiers:
            return Result.reject(
                Prefix.INVALID,
                f"GRASP-06: clone URL {target.url} names identifier {target.identifier!r}, "
                f"but the 'a' tag names {', '.join(repr(i) for i in pr.identifiers)}",
            )
    return None


def is_submission(pr: PullRequest, domain: str) -> bool:
    """Whether ``pr`` is a GRASP-06 submission to this relay (L21): a ``/prs/`` URL of its
    signer for an identifier its ``a`` tag names. Call after :func:`check_submission`."""
    return any(
        t.owner == pr.event.pubkey and t.identifier in pr.identifiers for t in prs_urls(pr, domain)
    )
