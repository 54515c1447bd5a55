"""Bounds on placeholders, the pushes to ``refs/nostr/<id>`` of events nobody published (S14.3).

Anyone may push to ``refs/nostr/<id>`` for an id the relay does not know (the PR event may
follow, S1.3), so such a push is bounded twice:

* per repository: at most ``max_per_repo`` open placeholders, counting those that pushes in
  flight will add, so concurrent pushes cannot overshoot together;
* per push: at most ``max_bytes`` of new objects, measured twice. First, before receive-pack
  runs, as the pack part of the request body (everything after the command list): cheap,
  exact for what was sent, and it refuses a 40 MiB push without storing a byte. But what
  receive-pack *keeps* can be more than what was sent — fewer than 100 objects are unpacked
  loose, and a delta expands to its whole object; a thin pack gets its bases appended — so
  second, a ``pre-receive`` hook (:data:`HOOK`) measures the quarantine directory where
  receive-pack has put the new objects, before any ref moves, and declines the push when it
  holds more. Quarantined objects of a declined push are deleted by git itself.

Refusals read like every other push refusal: ``remote: <reason>`` from ``git push``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from grasp.purgatory import PurgatoryStore

logger = logging.getLogger(__name__)

__all__ = ["HOOK", "PlaceholderLimits", "QuotaCheck", "install_hook"]

MIB = 1024 * 1024
#: The environment variable receive-pack's hook reads its limit from (set only for pushes that
#: add placeholders, so every other push runs the hook as a no-op).
LIMIT_ENV = "GRASP_PLACEHOLDER_MAX_BYTES"

HOOK = f"""#!/bin/sh
# grasp-relay (S14.3): a push that adds placeholders may keep at most ${LIMIT_ENV} bytes of
# new objects; receive-pack has them in its quarantine directory while this hook runs.
cat >/dev/null
limit="${{{LIMIT_ENV}:-}}"
[ -n "$limit" ] && [ -n "$GIT_QUARANTINE_PATH" ] || exit 0
kept=$(du -sb "$GIT_QUARANTINE_PATH" | cut -f1)
if [ "$kept" -gt "$limit" ]; then
    echo "refs/nostr/: a push for an event this relay does not know may keep at most" \\
         "$limit bytes of new objects; this one would keep $kept. Publish the PR event" \\
         "(kind 1618) first, then push." >&2
    exit 1
fi
"""


@dataclass(frozen=True)
class PlaceholderLimits:
    """S14.3 defaults: 32 MiB of new objects per push, 20 open placeholders per repository."""

    max_bytes: int = 32 * MIB
    max_per_repo: int = 20


class QuotaCheck:
    def __init__(self, limits: PlaceholderLimits, purgatory: PurgatoryStore) -> None:
        self.limits = limits
        self.purgatory = purgatory

    def adds(self, owner: str, identifier: str, unknown: list[str]) -> int:
        """How many of the ``unknown`` event ids are new placeholders of this repository."""
        open_ids = self.purgatory.open_placeholder_ids(owner, identifier)
        return len(set(unknown) - open_ids)

    def refusal(
        self, owner: str, identifier: str, unknown: list[str], in_flight: int, pack_bytes: int
    ) -> str | None:
        """Why a push with placeholder refs for the ``unknown`` ids may not land, or None."""
        if not unknown:
            return None
        held = self.purgatory.placeholders_in(owner, identifier) + in_flight
        if held + self.adds(owner, identifier, unknown) > self.limits.max_per_repo:
            return (
                f"refs/nostr/: this repository already has {held} placeholders waiting for "
                f"their PR events (at most {self.limits.max_per_repo}); publish the PR event "
                "(kind 1618) first, then push"
            )
        if pack_bytes > self.limits.max_bytes:
            return (
                "refs/nostr/: a push for an event this relay does not know may bring at most "
                f"{_size(self.limits.max_bytes)} of objects; this one brings "
                f"{_size(pack_bytes)}. Publish the PR event (kind 1618) first, then push"
            )
        return None

    def hook_env(self) -> dict[str, str]:
        """What receive-pack's ``pre-receive`` hook needs to measure this push."""
        return {LIMIT_ENV: str(self.limits.max_bytes)}


def install_hook(data_dir: Path) -> Path:
    """Write the ``pre-receive`` hook into ``<data-dir>/hooks`` (when it differs); returns the
    directory, which the repositories are served with as ``core.hooksPath``."""
    hooks = Path(data_dir) / "hooks"
    hook = hooks / "pre-receive"
    if not hook.is_file() or hook.read_text() != HOOK:
        hooks.mkdir(parents=True, exist_ok=True)
        tmp = hook.with_name(".pre-receive.tmp")
        tmp.write_text(HOOK)
        tmp.chmod(0o755)
        tmp.replace(hook)
        logger.debug("installed %s", hook)
    return hooks


def _size(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if n >= MIB else f"{n} bytes"
