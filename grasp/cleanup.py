"""What an expired or out-voted placeholder leaves behind, removed by the Releaser (S14.3).

A placeholder (a push to ``refs/nostr/<id>`` before its PR event) that expires, or that loses
to a signed PR event naming another commit, is marked in purgatory; the next release pass of
its identifier (the sweeper asks for one) deletes its ref — only if the ref still points at the
placeholder's commit and no PR event with that commit claims it — and prunes the objects that
only such refs reached (:func:`grasp.git.prune_unreachable`), keeping everything a held event
of the identifier still waits for. Running in the Releaser makes it one more write of the
single writer of refs (S8.1); a repository with a push in flight is left for the next pass.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from grasp.git import GitCommandError, PushesInFlight, delete_nostr_ref, prune_unreachable
from grasp.nostr import kinds
from grasp.nostr.nip34 import Nip34Error, PullRequest
from grasp.purgatory import PurgatoryStore
from grasp.purgatory.entries import HeldPlaceholder
from grasp.repositories import RepositoryIndex
from grasp.store.base import EventStore

logger = logging.getLogger(__name__)

__all__ = ["PlaceholderCleanup"]


class PlaceholderCleanup:
    def __init__(
        self,
        index: RepositoryIndex,
        purgatory: PurgatoryStore,
        store: EventStore,
        pushes: PushesInFlight | None = None,
    ) -> None:
        self.index = index
        self.purgatory = purgatory
        self.store = store
        self.pushes = pushes

    def run(self, identifier: str) -> int:
        """Clean up ``identifier``'s marked placeholders; returns how many were finished."""
        marked = self.purgatory.expired_placeholders(identifier)
        if not marked:
            return 0
        by_repo: dict[tuple[str, str], list[HeldPlaceholder]] = defaultdict(list)
        for placeholder in marked:
            by_repo[(placeholder.owner, placeholder.identifier)].append(placeholder)
        finished: list[HeldPlaceholder] = []
        for (owner, name), placeholders in by_repo.items():
            path = self.index.repo_path(owner, name)
            if path.is_dir() and self.pushes is not None and self.pushes.busy(path):
                logger.debug("%s has a push in flight; placeholder cleanup waits", path)
                continue
            if path.is_dir():
                self._clean(path, identifier, placeholders)
            finished += placeholders
        self.purgatory.forget_placeholders(p.key for p in finished)
        return len(finished)

    def _clean(self, path: Path, identifier: str, placeholders: list[HeldPlaceholder]) -> None:
        tips = [
            p.commit
            for p in placeholders
            if not self._claimed(p) and delete_nostr_ref(path, p.event_id, p.commit)
        ]
        if not tips:
            return
        try:
            prune_unreachable(path, tips, keep=self.purgatory.needed_oids(identifier))
        except (GitCommandError, OSError) as exc:  # the refs are gone; the objects wait
            logger.warning("pruning expired placeholders in %s failed: %s", path, exc)

    def _claimed(self, placeholder: HeldPlaceholder) -> bool:
        """Does a PR event (held or stored) now own this ref with this very commit?"""
        pr = self.purgatory.pr(placeholder.event_id)
        if pr is None:
            event = self.store.get(placeholder.event_id)
            if event is None or event.kind not in kinds.PR_KINDS:
                return False
            try:
                pr = PullRequest.from_event(event)
            except Nip34Error:
                return False
        return pr.commit == placeholder.commit and pr.references(placeholder.identifier)
