"""The NIP-11 relay information document with the GRASP additions (S10.2, S15.2,
protocol.md §2).

Built once from the configuration: nothing in it changes while the relay runs. GRASP-01 L28-L30
fields: ``supported_grasps`` (what this process serves), ``repo_acceptance_criteria`` (always, a
human-readable text; ``--repo-acceptance-criteria`` or the rules of GRASP-01 naming the domain)
and ``curation`` exactly when a curation rule is active (S15.5; the connection rate limit is
generic spam prevention and is not curation). Name, description, contact and icon come from
``--relay-*``; ``software`` and ``version`` are this project's.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import grasp
from grasp.relay.config import Config

DISTRIBUTION = "grasp-purgatory-sync"
SUPPORTED_NIPS = (1, 11, 34)
#: NIP-77 negentropy syncing, served unless ``--negentropy-max-sessions 0`` (S17.3).
NIP77 = 77
MAX_SUBID_LENGTH = 64


def software_url() -> str | None:
    """NIP-11 ``software`` must be the project's homepage URL; taken from the package metadata."""
    try:
        homepages = importlib.metadata.metadata(DISTRIBUTION).get_all("Home-page") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    return str(homepages[0]) if homepages else None


def supported_grasps(config: Config) -> list[str]:
    """GRASP-01 always; GRASP-05 with archive rules (S17.5); GRASP-02 (proactive sync) unless
    every peer is turned off (S17.1); GRASP-06 when on. The order is the upstream relay's."""
    grasps = ["GRASP-01"]
    if config.archive_policy.active:
        grasps.append("GRASP-05")
    if config.sync_enabled:
        grasps.append("GRASP-02")
    if config.grasp06:
        grasps.append("GRASP-06")
    return grasps


def acceptance_criteria(config: Config) -> str:
    """``--repo-acceptance-criteria``, or what GRASP-01 (and GRASP-06) make this relay host."""
    if config.repo_acceptance_criteria:
        return config.repo_acceptance_criteria
    domain = config.public_domain
    text = (
        "Repository announcements (kind 30617) that list this relay in both 'clone' "
        f"(http(s)://{domain}/<npub>/<identifier>.git) and 'relays' (ws(s)://{domain}), and "
        "announcements of the maintainers they list; the states, pull requests, patches, "
        "issues, comments and statuses of those repositories, and any event that references "
        "an accepted event or is referenced by one."
    )
    if config.grasp06:
        text += (
            " Pull requests of contributors without a repository here are accepted when their "
            f"'clone' tag names http(s)://{domain}/prs/<signer npub>/<identifier>.git (GRASP-06)."
        )
    archive = config.archive_policy
    if archive.active:
        text += (
            " Also, as a read-only archive (GRASP-05): announcements of "
            + ("any repository" if archive.everything else "the repositories named in 'curation'")
            + " even when they do not list this relay, filled from their own clone URLs."
        )
    if config.curation.active:
        text += " The curation policy below applies."
    return text


def curation_text(config: Config) -> str | None:
    """NIP-11 ``curation`` (GRASP-01 L30): the curation rules and the archive's read-only
    scope (S17.5), present exactly when either applies."""
    parts = [config.curation.summary(), config.archive_policy.summary()]
    texts = [part for part in parts if part]
    return " ".join(texts) if texts else None


def supported_nips(config: Config) -> list[int]:
    nips = list(SUPPORTED_NIPS)
    if config.negentropy_max_sessions > 0:
        nips.append(NIP77)
    return sorted(nips)


def relay_information(config: Config) -> dict[str, Any]:
    """The document served for ``Accept: application/nostr+json`` on ``/``."""
    info: dict[str, Any] = {
        "name": config.relay_name,
        "description": config.relay_description
        or (
            f"GRASP relay at {config.public_domain}: a Nostr relay for NIP-34 git collaboration "
            "that also hosts the git repositories it announces."
        ),
        "supported_nips": supported_nips(config),
        "version": grasp.__version__,
        "supported_grasps": supported_grasps(config),
        "limitation": {
            "max_message_length": config.max_message_bytes,
            "max_subscriptions": config.max_subscriptions,
            "max_limit": config.max_limit,
            "default_limit": config.max_limit,
            "max_subid_length": MAX_SUBID_LENGTH,
            "auth_required": False,
            "payment_required": False,
        },
    }
    info["repo_acceptance_criteria"] = acceptance_criteria(config)
    curation = curation_text(config)
    if curation is not None:
        info["curation"] = curation  # L30: present exactly when curated, else omitted
    for field, value in (("contact", config.relay_contact), ("icon", config.relay_icon)):
        if value:
            info[field] = value
    url = software_url()
    if url:
        info["software"] = url
    return info
