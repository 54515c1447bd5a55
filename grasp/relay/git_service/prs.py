"""GRASP-06 contributor PRs, the git side: ``/prs/<npub>/<identifier>.git`` (S16.1).

A contributor with no repository here pushes a PR tip to their own ``/prs/`` path and publishes
the PR event naming it (``grasp.admission.contributor_prs`` has the event side). This module:

* **serves** ``/prs/<npub>/<identifier>.git`` for *any* well-formed path (a valid npub and a
  valid identifier, S10.4): the path's repository once a ref was accepted there, before that a
  shared empty bare repository (L13), so a client can always clone or ``ls-remote`` it;
* **authorises pushes before receive-pack** (L15): only ``refs/nostr/<64-hex event id>``, never
  a deletion; when the event is known (held or stored) its signer must be the path's npub, its
  ``a`` tag must name the path's identifier and its ``c`` must be the pushed commit, each
  refusal saying which; an unknown id is a placeholder under the same bounds as ``refs/nostr/``
  pushes elsewhere (:data:`PLACEHOLDER_MAX_BYTES` per push, :data:`PLACEHOLDER_MAX_PER_REPO`
  per repository, S14.3) and is remembered in purgatory so it expires like the others;
* **reconciles** when the signed event arrives after the push: a ref whose commit is not the
  event's ``c`` is deleted (the signed event wins), and so is its placeholder;
* hands the **release** a PR's ``/prs/`` repository as a *source* (:meth:`sources`): the
  Releaser copies the commit into the announced repositories of the identifier and sets their
  ``refs/nostr/<event-id>`` (the mirror of L21-24); nothing is ever copied the other way;
* **removes** a ``/prs/`` repository left with no refs (a failed first push, a lost ref, an
  expired placeholder).

The repositories live in ``<data-dir>/prs/<npub>/<identifier>.git``, apart from the announced
ones, so nothing that walks ``repos/`` (release, sync targets, the sweeper) ever sees them.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from grasp.admission.contributor_prs import is_submission, prs_urls
from grasp.admission.write_policy import SyncPort
from grasp.git import create_bare_repo, delete_nostr_ref, list_refs
from grasp.git.http_backend import RepoTarget, is_git_dir, make_git_http_app, request_path
from grasp.git.receive import MalformedPush, read_push_commands
from grasp.git.repos import validate_identifier, validate_npub
from grasp.nostr import kinds
from grasp.nostr.bech32 import npub_decode
from grasp.nostr.nip34 import Nip34Error, PullRequest
from grasp.purgatory import AddOutcome, PurgatoryStore
from grasp.relay.git_service.placeholder_quota import PlaceholderLimits
from grasp.store.base import EventStore

logger = logging.getLogger(__name__)

__all__ = ["PLACEHOLDER_MAX_BYTES", "PLACEHOLDER_MAX_PER_REPO", "ContributorRepositories"]

#: S14.3's bounds of pushes to ``refs/nostr/<id>`` of unknown events; ``--placeholder-max-bytes``
#: and ``--placeholder-max-per-repo`` replace these once the durability work adds them.
#: The same bounds as placeholders elsewhere (S14.3); the relay passes its options.
PLACEHOLDER_MAX_BYTES = PlaceholderLimits().max_bytes
PLACEHOLDER_MAX_PER_REPO = PlaceholderLimits().max_per_repo

ZERO = "0" * 40
NOSTR_PREFIX = "refs/nostr/"
_NOSTR_REF = re.compile(r"refs/nostr/(?P<id>[0-9a-f]{64})")
_ROUTE = re.compile(r"/prs/(?P<npub>[^/]+)/(?P<name>[^/]+)\.git(?P<tail>/.*)?")
_ENV_KEY = "grasp.prs.push"


@dataclass(frozen=True)
class _Path:
    npub: str
    owner: str
    identifier: str


class ContributorRepositories:
    """The ``/prs/`` repositories; :meth:`app` is the WSGI app mounted at ``/prs``.

    Implements ``grasp.admission.contributor_prs.ContributorPrs`` for the write policy and
    gives the release workflow :meth:`sources`.
    """

    def __init__(
        self,
        data_dir: Path,
        domain: str,
        store: EventStore,
        purgatory: PurgatoryStore,
        sync: SyncPort,
        *,
        serve_config: Mapping[str, str],
        max_placeholder_bytes: int = PLACEHOLDER_MAX_BYTES,
        max_placeholders_per_repo: int = PLACEHOLDER_MAX_PER_REPO,
    ) -> None:
        self.root = Path(data_dir) / "prs"
        self.domain = domain
        self.store = store
        self.purgatory = purgatory
        self.sync = sync
        self.serve_config = dict(serve_config)
        self.max_placeholder_bytes = max_placeholder_bytes
        self.max_placeholders_per_repo = max_placeholders_per_repo
        self.empty = create_bare_repo(self.root / ".empty.git")  # L13: what unknown paths serve

    def path_of(self, npub: str, identifier: str) -> Path:
        return self.root / validate_npub(npub) / f"{identifier}.git"

    # -- serving (L13, L15) -----------------------------------------------------------------

    def app(self) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
        read = make_git_http_app(self._resolve_read)
        push = make_git_http_app(
            self._resolve_push,
            before_receive_pack=self.before_receive_pack,
            after_receive_pack=self.after_receive_pack,
        )

        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = request_path(environ) or ""
            return (push if path.endswith("/git-receive-pack") else read)(environ, start_response)

        return serve

    def _resolve_read(self, url_path: str) -> RepoTarget | None:
        where = _parse(url_path)
        if where is None:
            return None
        path = self.path_of(where.npub, where.identifier)
        return RepoTarget(path if is_git_dir(path) else self.empty, self.serve_config)

    def _resolve_push(self, url_path: str) -> RepoTarget | None:
        where = _parse(url_path)
        if where is None:
            return None
        return RepoTarget(self.path_of(where.npub, where.identifier), self.serve_config)

    # -- push authorisation -----------------------------------------------------------------

    def before_receive_pack(self, environ: dict[str, Any], body: IO[bytes]) -> str | None:
        where = _parse((request_path(environ) or "").removesuffix("/git-receive-pack"))
        if where is None:
            return "repository not found"
        try:
            push = read_push_commands(body)
        except MalformedPush as exc:
            return f"malformed push: {exc}"
        body.seek(0, 2)
        size = body.tell()
        path = self.path_of(where.npub, where.identifier)
        updates = [(c.ref, c.new) for c in push.commands if c.old != c.new]
        decision = self._authorise(where, path, updates, size)
        if isinstance(decision, str):
            logger.info("refused push to %s: %s", path, decision)
            return decision
        create_bare_repo(path)
        environ[_ENV_KEY] = (path, decision)
        return None

    def _authorise(
        self, where: _Path, path: Path, updates: Sequence[tuple[str, str]], size: int
    ) -> list[tuple[str, str, PullRequest | None]] | str:
        """The accepted ``(event id, commit, known PR)`` updates, or the refusal text."""
        accepted: list[tuple[str, str, PullRequest | None]] = []
        for ref, new in updates:
            match = _NOSTR_REF.fullmatch(ref)
            if match is None:
                return (
                    f"{ref}: GRASP-06 /prs/ repositories take only refs/nostr/<event-id> "
                    "(64 lowercase hex)"
                )
            if new == ZERO:
                return f"{ref}: refs/nostr/ refs cannot be deleted by a push"
            event_id = match["id"]
            pr = self._known_pr(event_id)
            refusal = _check_known(pr, where, event_id, new) if pr is not None else None
            if refusal:
                return refusal
            accepted.append((event_id, new, pr))
        unknown = sum(1 for _, _, pr in accepted if pr is None)
        if unknown and size > self.max_placeholder_bytes:
            return (
                f"push of {size} bytes is over the {self.max_placeholder_bytes} bytes allowed "
                "for refs/nostr/ refs of events this relay does not know yet"
            )
        if unknown and self._placeholders_in(path) + unknown > self.max_placeholders_per_repo:
            return (
                f"{path.name}: at most {self.max_placeholders_per_repo} refs/nostr/ refs of "
                "unknown events per repository; publish the PR events first"
            )
        return accepted

    def after_receive_pack(self, environ: dict[str, Any], ok: bool) -> None:
        landed = environ.get(_ENV_KEY)
        if landed is None:
            return
        path, accepted = landed
        if not ok:
            self._remove_if_empty(path)
            return
        for event_id, commit, known in accepted:
            pr = known or self._known_pr(event_id)  # the event may have come meanwhile
            if pr is None:
                if self.purgatory.add_placeholder(event_id, commit) is AddOutcome.ADDED:
                    logger.info("GRASP-06 placeholder for refs/nostr/%s at %s", event_id, commit)
            else:
                logger.info("GRASP-06 push of %s for PR %s; releasing it", commit, event_id)
                self.sync.git_data_arrived(pr.identifier)

    def _known_pr(self, event_id: str) -> PullRequest | None:
        held = self.purgatory.pr(event_id)
        if held is not None:
            return held
        event = self.store.get(event_id)
        if event is None or event.kind not in kinds.PR_KINDS:
            return None
        try:
            return PullRequest.from_event(event)
        except Nip34Error:
            return None

    def _placeholders_in(self, path: Path) -> int:
        """refs/nostr/ refs of ``path`` whose event is not known (placeholders, S14.3)."""
        if not is_git_dir(path):
            return 0
        ids = [m["id"] for ref in list_refs(path) if (m := _NOSTR_REF.fullmatch(ref))]
        return sum(1 for event_id in ids if self._known_pr(event_id) is None)

    # -- the write policy's port (ContributorPrs) and the release's sources -----------------

    def sources(self, pr: PullRequest) -> list[Path]:
        if not is_submission(pr, self.domain):
            return []
        found = []
        for target in prs_urls(pr, self.domain):
            if target.owner == pr.event.pubkey and target.identifier in pr.identifiers:
                path = self.path_of(target.npub, target.identifier)
                if is_git_dir(path) and path not in found:
                    found.append(path)
        return found

    def reconcile(self, pr: PullRequest) -> None:
        for path in self.sources(pr):
            pushed = list_refs(path).get(NOSTR_PREFIX + pr.event_id)
            if pushed is None or pushed == pr.commit:
                continue
            if delete_nostr_ref(path, pr.event_id, pushed):
                logger.info(
                    "GRASP-06: deleted refs/nostr/%s in %s: pushed %s, the event names %s",
                    pr.event_id,
                    path,
                    pushed,
                    pr.commit,
                )
            if self.purgatory.placeholder_commit(pr.event_id) == pushed:
                self.purgatory.remove(pr.event_id)  # the signed event wins (S14.3)
            self._remove_if_empty(path)

    # -- upkeep -----------------------------------------------------------------------------

    def forget(self, event_ids: Iterable[str]) -> int:
        """Delete the refs of expired placeholders (``SweepResult.placeholders``) from every
        ``/prs/`` repository and remove the repositories left empty; returns refs deleted."""
        doomed = set(event_ids)
        if not doomed or not self.root.is_dir():
            return 0
        deleted = 0
        for path in self.root.glob("npub1*/*.git"):
            for ref, oid in list_refs(path).items():
                match = _NOSTR_REF.fullmatch(ref)
                if match and match["id"] in doomed and self._known_pr(match["id"]) is None:
                    deleted += delete_nostr_ref(path, match["id"], oid)
            self._remove_if_empty(path)
        return deleted

    def _remove_if_empty(self, path: Path) -> None:
        if path == self.empty or not is_git_dir(path) or list_refs(path):
            return
        shutil.rmtree(path, ignore_errors=True)
        logger.info("removed the GRASP-06 repository %s: no refs left", path)


def _parse(url_path: str) -> _Path | None:
    """``/prs/<npub>/<identifier>.git`` → its parts, or None for anything not well-formed
    (a lowercase bech32 npub, an identifier that can name a directory, S10.4, S14.2)."""
    match = _ROUTE.fullmatch(url_path)
    if match is None or match["tail"] not in (None, ""):
        return None
    try:
        npub, identifier = validate_npub(match["npub"]), validate_identifier(match["name"])
        return _Path(npub, npub_decode(npub), identifier)
    except ValueError:  # Bech32Error is one
        return None


def _check_known(pr: PullRequest, where: _Path, event_id: str, new: str) -> str | None:
    """A push for a known PR must come from its signer's path, name its identifier and
    carry its commit (S16.1); the refusal says which does not hold."""
    if pr.event.pubkey != where.owner:
        return (
            f"refs/nostr/{event_id}: the event is signed by another key than {where.npub}, "
            "whose /prs/ repository this is"
        )
    if where.identifier not in pr.identifiers:
        return (
            f"refs/nostr/{event_id}: the event's 'a' tag names "
            f"{', '.join(repr(i) for i in pr.identifiers)}, not {where.identifier!r}"
        )
    if pr.commit != new:
        return f"refs/nostr/{event_id}: event {event_id} names commit {pr.commit}, not {new}"
    return None
