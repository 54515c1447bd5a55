"""GRASP-01 admission rules (S10.4) as small pure functions.

Each rule looks at an event and read-only facts and returns a refusal :class:`Result` or
``None`` ("no objection"). The write policy (``grasp.admission.write_policy``) runs them in
order and performs the effects; keeping the rules free of effects is what lets each one be
unit-tested on its own, nostr_relay/khatru style.
"""

from __future__ import annotations

from collections.abc import Iterable

from grasp.nostr import kinds
from grasp.nostr.address import Address
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import Event
from grasp.nostr.nip34 import Announcement
from grasp.nostr.results import Prefix, Result
from grasp.purgatory import EXPIRED_RESULT

#: Kinds accepted when they reference an accepted announcement or event (S10.4).
RELATED_KINDS = frozenset(
    {kinds.PATCH, kinds.ISSUE, kinds.COMMENT, kinds.DELETION, *kinds.STATUS_KINDS}
)

NO_ANNOUNCEMENT = Result.reject(Prefix.INVALID, "no announcement exists for this repository")
NOT_AUTHORISED = Result.reject(Prefix.INVALID, "author not authorized for this repository")


def clone_url_of_ours(announcement: Announcement, domain: str) -> str | None:
    """The clone URL that names this service for the announcement, if it lists one."""
    path = f"/{npub_encode(announcement.owner)}/{announcement.identifier}.git"
    wanted = {f"{scheme}://{domain.lower()}{path}" for scheme in ("http", "https")}
    for url in announcement.clone_urls:
        if _lower_authority(url) in wanted:
            return url
    return None


def relay_url_of_ours(announcement: Announcement, domain: str) -> str | None:
    wanted = {f"{scheme}://{domain.lower()}" for scheme in ("ws", "wss")}
    for url in announcement.relays:
        if _lower_authority(url).rstrip("/") in wanted:
            return url
    return None


def lists_this_service(announcement: Announcement, domain: str) -> bool:
    """S10.4: ``clone`` has ``http(s)://<domain>/<npub>/<d>.git`` and ``relays`` has ``ws(s)://<domain>``."""
    return bool(clone_url_of_ours(announcement, domain) and relay_url_of_ours(announcement, domain))


def _lower_authority(url: str) -> str:
    """Lowercase the scheme and authority only: paths are case-sensitive."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{authority.lower()}{slash}{path}"


def check_announcement(
    announcement: Announcement, domain: str, maintainer_of_accepted: bool
) -> Result | None:
    """An announcement must list this service, or come from a maintainer of an accepted one."""
    if lists_this_service(announcement, domain) or maintainer_of_accepted:
        return None
    return Result.reject(
        Prefix.BLOCKED,
        f"announcement must list this relay in 'clone' (https://{domain}/"
        f"{npub_encode(announcement.owner)}/{announcement.identifier}.git) and 'relays' "
        f"(wss://{domain})",
    )


def check_repository_author(
    announcements: Iterable[Announcement], authorised_owners: Iterable[str]
) -> Result | None:
    """States need an announcement of their identifier, and an author in some owner's
    recursive maintainer set (S10.3, S10.4)."""
    if not list(announcements):
        return NO_ANNOUNCEMENT
    if not list(authorised_owners):
        return NOT_AUTHORISED
    return None


def check_not_expired(event: Event, synced: bool, expired: bool) -> Result | None:
    """S1.4: a *synced* event that already expired from purgatory is not taken again (a user
    may resubmit)."""
    return EXPIRED_RESULT if synced and expired else None


def check_sha1_oids(oids: Iterable[str]) -> Result | None:
    """S14.2: NIP-34 allows SHA-256 object ids, but this relay's repositories are SHA-1; such an
    id could never be satisfied here (and the git layer refuses it), so it is refused now."""
    wide = sorted(oid for oid in oids if len(oid) != 40)
    if not wide:
        return None
    return Result.reject(
        Prefix.INVALID,
        f"object id {wide[0]} is not a SHA-1 id; repositories on this relay use SHA-1",
    )


def referenced_addresses(event: Event) -> list[Address]:
    """``a``/``A``/``q`` coordinates of announcements (kind 30617) the event points at."""
    found = []
    for name in ("a", "A", "q"):
        for value in event.tag_values(name):
            address = Address.parse(value)
            if address is not None and address.kind == kinds.REPO_ANNOUNCEMENT:
                found.append(address)
    return found


def referenced_ids(event: Event) -> list[str]:
    """``e``/``E``/``q`` event ids the event points at (64 lowercase hex only)."""
    ids = []
    for name in ("e", "E", "q"):
        ids += [v for v in event.tag_values(name) if len(v) == 64 and _is_hex(v)]
    return ids


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdef" for c in value)


def check_related(references_accepted: bool, kind: int) -> Result | None:
    """S10.4: other NIP-34 kinds must reference an accepted announcement or event."""
    if references_accepted:
        return None
    return Result.reject(
        Prefix.BLOCKED,
        f"kind {kind} must reference a repository or an event accepted by this relay",
    )


def check_kind(kind: int) -> Result | None:
    """Only NIP-34 repository events and what relates to them are taken (GRASP-01)."""
    if kind in (kinds.REPO_ANNOUNCEMENT, kinds.REPO_STATE, *kinds.PR_KINDS, *RELATED_KINDS):
        return None
    return Result.reject(Prefix.BLOCKED, f"kind {kind} is not accepted by this GRASP relay")
