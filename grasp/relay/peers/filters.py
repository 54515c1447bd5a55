"""What is asked of a peer (S17.2), in dependency order, as pure functions of what we host.

Three stages, each a list of NIP-01 filters, synced one after the other so that what an event
needs is here before it (the write policy refuses a state without its announcement, a reply
without its root):

1. announcements (30617) of the identifiers we host, user grasp lists (10317) of their owners;
2. states (30618) by ``#d``; events tagging a hosted repository (``#a``/``#A``/``#q`` =
   ``30617:<pubkey>:<d>``: patches, PRs, PR updates, issues, statuses, comments);
3. replies to those roots (``#e``/``#E``/``#q`` = a root's id) — the roots are read from our
   store after stage 2, so stage 3 is built only then.

Values are batched :data:`BATCH` per filter (ngit-grasp's 100). The live subscription holds
every stage's filters with ``limit: 0``, at most :data:`MAX_LIVE_FILTERS` of them (relays close
subscriptions with too many filters; ngit-grasp stays under ~70): past that the batches grow
instead of multiplying, so nothing hosted is left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from grasp.nostr import kinds

__all__ = ["BATCH", "MAX_LIVE_FILTERS", "Hosted", "live_filters", "stage_filters"]

BATCH = 100
MAX_LIVE_FILTERS = 70
#: Root kinds whose replies are copied: patches, PRs, issues (NIP-34 thread starters).
ROOT_KINDS = (kinds.PATCH, kinds.PULL_REQUEST, kinds.ISSUE)
STAGES = 3


@dataclass(frozen=True)
class Hosted:
    """The repositories we host, as (owner pubkey, identifier), and their thread roots' ids."""

    repositories: frozenset[tuple[str, str]] = frozenset()
    roots: frozenset[str] = frozenset()

    @property
    def coordinates(self) -> list[str]:
        return sorted(f"{kinds.REPO_ANNOUNCEMENT}:{pk}:{d}" for pk, d in self.repositories)

    @property
    def identifiers(self) -> list[str]:
        return sorted({d for _, d in self.repositories})

    @property
    def owners(self) -> list[str]:
        return sorted({pk for pk, _ in self.repositories})


def batched(values: Sequence[str], size: int) -> list[list[str]]:
    return [list(values[i : i + size]) for i in range(0, len(values), size)]


def stage_filters(stage: int, hosted: Hosted, batch: int = BATCH) -> list[dict[str, Any]]:
    """The filters of stage 1, 2 or 3 (see the module docstring); empty when nothing is hosted."""
    if stage == 1:
        return [
            *(
                {"kinds": [kinds.REPO_ANNOUNCEMENT], "#d": b}
                for b in batched(hosted.identifiers, batch)
            ),
            *(
                {"kinds": [kinds.USER_GRASP_LIST], "authors": b}
                for b in batched(hosted.owners, batch)
            ),
        ]
    if stage == 2:
        coordinates = batched(hosted.coordinates, batch)
        return [
            *({"kinds": [kinds.REPO_STATE], "#d": b} for b in batched(hosted.identifiers, batch)),
            *({f"#{tag}": b} for tag in ("a", "A", "q") for b in coordinates),
        ]
    if stage == 3:
        roots = batched(sorted(hosted.roots), batch)
        return [{f"#{tag}": b} for tag in ("e", "E", "q") for b in roots]
    raise ValueError(f"there are {STAGES} stages, not {stage}")


def live_filters(hosted: Hosted, cap: int = MAX_LIVE_FILTERS) -> list[dict[str, Any]]:
    """Every stage's filters with ``limit: 0``, at most ``cap`` of them (batches grow to fit)."""
    batch = BATCH
    while True:
        filters = [f for stage in range(1, STAGES + 1) for f in stage_filters(stage, hosted, batch)]
        if len(filters) <= cap:
            return [{**f, "limit": 0} for f in filters]
        batch = max(batch + 1, math.ceil(batch * len(filters) / cap))


def with_window(flt: dict[str, Any], since: int | None, until: int | None) -> dict[str, Any]:
    """``flt`` restricted to ``since``/``until`` (each only when set)."""
    out = dict(flt)
    if since is not None:
        out["since"] = since
    if until is not None:
        out["until"] = until
    return out


def all_values(filters: Iterable[dict[str, Any]]) -> int:
    """How many identifiers, keys, coordinates and ids the filters name (for status and logs)."""
    return sum(len(v) for f in filters for k, v in f.items() if k.startswith("#") or k == "authors")
