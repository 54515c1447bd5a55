"""GRASP-01 admission rules (S10.4) as small pure functions.

Each rule looks at an event and read-only facts and returns a refusal :class:`Result` or
``None`` ("no objection"). The write policy (``grasp.admission.write_policy``) runs them in
order and performs the effects; keeping the rules free of effects is what lets each one be
unit-tested on its own, nostr_relay/khatru style.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

from grasp.nostr.address import Address
from grasp.nostr.bech32 import npub_encode
from grasp.nostr.event import Event
from grasp.nostr.nip34 import Announcement
from grasp.nostr.results import Prefix, Result
from grasp.purgatory import EXPIRED_RESULT

NO_ANNOUNCEMENT = Result.reject(Prefix.INVALID, "no announcement exists for this repository")
NOT_AUTHORISED = Result.reject(Prefix.INVALID, "author not authorized for this repository")


def clone_url_of_ours(announcement: Announcement, domain: str) -> str | None:
    """The clone URL that names this service for the announcement, if it lists one.

    The identifier may be written percent-encoded (``my%20repo``, ``%C3%A9moji``) or as it is:
    URLs are compared with their path percent-decoded once, as UTF-8 (S15.3).
    """
    path = f"/{npub_encode(announcement.owner)}/{announcement.identifier}.git"
    wanted = {f"{scheme}://{domain.lower()}{path}" for scheme in ("http", "https")}
    for url in announcement.clone_urls:
        if _lower_authority(url, decode_path=True) in wanted:
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


def _lower_authority(url: str, decode_path: bool = False) -> str:
    """Lowercase the scheme and authority only: paths are case-sensitive."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if decode_path:
        try:
            path = unquote(path, errors="strict")
        except UnicodeDecodeError:
            pass  # escapes that are not UTF-8 name no identifier: compared as written
    return f"{scheme.lower()}://{authority.lower()}{slash}{path}"


def check_announcement(
    announcement: Announcement, domain: str, maintainer_of_accepted: bool, scheme: str = "http"
) -> Result | None:
    """An announcement must list this service, or come from a maintainer of an accepted one.

    The refusal names each tag that lacks us (``clone``, ``relays`` or both) and the URL to
    add, in the ``scheme`` clients reach this relay by (``http``: ws://, ``https``: wss://),
    so the advice works as given (S10.4; either scheme is accepted).
    """
    if lists_this_service(announcement, domain) or maintainer_of_accepted:
        return None
    ws = "wss" if scheme == "https" else "ws"
    clone = f"{scheme}://{domain}/{npub_encode(announcement.owner)}/{announcement.identifier}.git"
    wanted = []
    if clone_url_of_ours(announcement, domain) is None:
        wanted.append(("clone", clone))
    if relay_url_of_ours(announcement, domain) is None:
        wanted.append(("relays", f"{ws}://{domain}"))
    tags = " and ".join(f"'{tag}'" for tag, _ in wanted)
    advice = "; ".join(f"add {url} to '{tag}'" for tag, url in wanted)
    return Result.reject(
        Prefix.BLOCKED,
        f"announcement does not list this relay in its {tags} tag{'s' * (len(wanted) > 1)}: "
        f"{advice}",
    )


def pr_held_result(commit: str, fetch_urls: int) -> Result:
    """S1.2: a held PR's answer says where its commit will come from — the relay fetches it
    from the clone URLs purgatory sync will try, or, with none, waits for a push."""
    if fetch_urls:
        source = f"will fetch from {fetch_urls} clone URL{'s' * (fetch_urls != 1)}"
    else:
        source = "waiting for a push"
    return Result.ok(Prefix.PURGATORY, f"PR held until commit {commit} arrives: {source}")


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
    """Coordinates the event points at in ``a``/``A``/``q`` tags, of any kind (S15.1): an
    announcement, a state, or any other accepted addressable or replaceable event."""
    found = []
    for name in ("a", "A", "q"):
        for value in event.tag_values(name):
            address = Address.parse(value)
            if address is not None:
                found.append(address)
    return list(dict.fromkeys(found))


def referenced_ids(event: Event) -> list[str]:
    """``e``/``E``/``q`` event ids the event points at (64 lowercase hex only)."""
    ids = []
    for name in ("e", "E", "q"):
        ids += [v for v in event.tag_values(name) if len(v) == 64 and _is_hex(v)]
    return ids


def reference_keys(event: Event) -> list[str]:
    """What an accepted ``event`` names, as keys of the referenced-ids index (S15.1)."""
    return [*(str(a) for a in referenced_addresses(event)), *referenced_ids(event)]


def own_keys(event: Event) -> list[str]:
    """The keys under which an earlier accepted event may have named ``event``: its id, and
    its address when it is addressable or replaceable (S15.1)."""
    return [event.id] if event.address is None else [event.id, event.address]


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdef" for c in value)


def check_related(found: bool, event: Event) -> Result | None:
    """S15.1, GRASP-01 L13: an event of any other kind must tag an accepted announcement or
    accepted event, or be tagged by one; the refusal says what the event named."""
    if found:
        return None
    addresses, ids = referenced_addresses(event), referenced_ids(event)
    if not addresses and not ids:
        named = "it tags no repository or event (a/A/q/e/E)"
    else:
        parts = [_short_address(a) for a in addresses[:3]]
        parts += [f"event {i[:12]}..." for i in ids[:3]]
        more = len(addresses) + len(ids) - len(parts)
        named = "none of what it tags is accepted here (" + ", ".join(parts)
        named += f", {more} more)" if more > 0 else ")"
    return Result.reject(
        Prefix.BLOCKED,
        f"kind {event.kind} must reference a repository or an event accepted by this relay, "
        f"or be referenced by one: {named}, and no accepted event tags it",
    )


def _short_address(address: Address) -> str:
    return f"{address.kind}:{address.pubkey[:12]}...:{address.d}"
