"""The NIP-11 relay information document with the GRASP additions (S10.2, protocol.md §2).

Built once from the configuration: nothing in it changes while the relay runs.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import grasp
from grasp.relay.config import Config

DISTRIBUTION = "grasp-purgatory-sync"
SUPPORTED_NIPS = (1, 11, 34)
MAX_SUBID_LENGTH = 64


def software_url() -> str | None:
    """NIP-11 ``software`` must be the project's homepage URL; taken from the package metadata."""
    try:
        homepages = importlib.metadata.metadata(DISTRIBUTION).get_all("Home-page") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    return str(homepages[0]) if homepages else None


def supported_grasps(config: Config) -> list[str]:
    """GRASP-01 always; GRASP-02 (proactive sync) only when sync sources are configured."""
    return ["GRASP-01", "GRASP-02"] if config.sync_enabled else ["GRASP-01"]


def relay_information(config: Config) -> dict[str, Any]:
    """The document served for ``Accept: application/nostr+json`` on ``/``."""
    info: dict[str, Any] = {
        "name": "grasp-relay",
        "description": (
            f"GRASP relay at {config.public_domain}: a Nostr relay for NIP-34 git collaboration "
            "that also hosts the git repositories it announces."
        ),
        "supported_nips": list(SUPPORTED_NIPS),
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
    url = software_url()
    if url:
        info["software"] = url
    return info
