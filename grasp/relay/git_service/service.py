"""Git smart HTTP for the relay's repositories, with push authorisation (S10.5, S10.6).

Serving is the real ``git http-backend`` through ``grasp.git.http_backend``; this module
decides *which* repositories exist at ``/<npub>/<identifier>.git`` (accepted announcements and
those in announcement purgatory, S10.5) and *which pushes* may land (S10.6), before
``git-receive-pack`` runs:

* ``refs/nostr/<event-id>``: the id must be 64 hex; when the PR event is known (store or
  purgatory) the pushed commit must be its ``c``; an unknown id is accepted and remembered as a
  placeholder of this repository (S1.3) once the push succeeded — within bounds (S14.3): at
  most ``max_per_repo`` open placeholders per repository, and at most ``max_bytes`` of new
  objects per push, measured twice (:mod:`grasp.relay.git_service.placeholder_quota`);
* ``refs/heads/*`` and ``refs/tags/*``: the repository's refs *after* the push must equal
  exactly the refs of a state event (store or purgatory) by an author in the owner's recursive
  maintainer set.

A refusal reaches the user as ``remote: <reason>`` from ``git push``. After a successful push
the Releaser is told (``GitDataArrived``): it releases what is now satisfiable, aligns HEAD and
the other owners' repositories and promotes the announcement.

``GET /<npub>/<identifier>.git`` itself (no service path) is the repository's HTML landing page,
or a 404 page when it is not hosted (GRASP-01 L58, S15.3; ``grasp.relay.git_service.landing``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from grasp.admission.rules import clone_url_of_ours, relay_url_of_ours
from grasp.admission.write_policy import SyncPort
from grasp.git import PushesInFlight, list_refs
from grasp.git.http_backend import (
    CGI_ENV_KEY,
    RepoTarget,
    is_git_dir,
    make_git_http_app,
    request_path,
)
from grasp.git.receive import MalformedPush, PushRequest, RefUpdate, read_push_commands
from grasp.nostr import kinds
from grasp.nostr.bech32 import npub_decode, npub_encode
from grasp.nostr.nip34 import (
    PullRequest,
    RepositoryState,
    announcement_lookup,
    identifier_problem,
    is_oid,
)
from grasp.purgatory import AddOutcome, PurgatoryStore
from grasp.relay.git_service.landing import landing_page, not_hosted_page
from grasp.relay.git_service.placeholder_quota import PlaceholderLimits, QuotaCheck, install_hook
from grasp.repositories import RepositoryIndex
from grasp.store.base import EventStore

logger = logging.getLogger(__name__)

__all__ = ["SERVE_CONFIG", "GitService"]

ZERO = "0" * 40
NOSTR_PREFIX = "refs/nostr/"
ALIGNED = ("refs/heads/", "refs/tags/")
_EVENT_ID = re.compile(r"[0-9a-f]{64}")
_ENV_KEY = "grasp.push"
_LANDING = re.compile(r"/(?P<npub>[^/]+)/(?P<name>[^/]+)\.git/?")

#: S10.5: serve reachable and tip objects by id (protocol v0 too), accept pushes (authorised here).
SERVE_CONFIG: Mapping[str, str] = {
    "uploadpack.allowReachableSHA1InWant": "true",
    "uploadpack.allowTipSHA1InWant": "true",
    "uploadpack.allowFilter": "true",
    "http.receivepack": "true",
    # A push may delete the branch HEAD names (renaming master to main): the push is authorised
    # against a state, and the release right after points HEAD at that state's branch (S8.2).
    "receive.denyDeleteCurrent": "ignore",
}


@dataclass(frozen=True)
class _Repo:
    owner: str
    identifier: str
    path: Path


@dataclass
class _Push:
    repo: _Repo
    placeholders: list[tuple[str, str]]
    state: RepositoryState | None
    #: Placeholders this push adds (event ids not yet held as placeholders of the repository).
    new_placeholders: int = 0
    token: int | None = None


class GitService:
    """Resolver and push hooks for the bridge; :meth:`app` is the WSGI app the relay mounts."""

    def __init__(
        self,
        index: RepositoryIndex,
        store: EventStore,
        purgatory: PurgatoryStore,
        sync: SyncPort,
        max_request_bytes: int = 1 << 30,
        domain: str | None = None,
        limits: PlaceholderLimits | None = None,
        pushes: PushesInFlight | None = None,
    ) -> None:
        self.index = index
        self.store = store
        self.purgatory = purgatory
        self.sync = sync
        self.max_request_bytes = max_request_bytes
        #: Public authority for URLs on the landing page; None: the request's Host header.
        self.domain = domain
        self.repos_root = (Path(index.data_dir) / "repos").resolve()
        self.quota = QuotaCheck(limits or PlaceholderLimits(), purgatory)
        self.pushes = pushes or PushesInFlight()
        self.serve_config = {
            **SERVE_CONFIG,
            "core.hooksPath": str(install_hook(Path(index.data_dir))),
        }

    def app(self) -> Any:
        git = make_git_http_app(
            self.resolve,
            before_receive_pack=self.before_receive_pack,
            after_receive_pack=self.after_receive_pack,
            max_request_bytes=self.max_request_bytes,
        )

        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = request_path(environ)
            page = _LANDING.fullmatch(path) if path is not None else None
            if page is None or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                return git(environ, start_response)
            return self.landing(environ, start_response, page["npub"], page["name"])

        return serve

    # -- the landing page (GRASP-01 L58) ----------------------------------------------------

    def landing(
        self, environ: dict[str, Any], start_response: Callable[..., Any], npub: str, name: str
    ) -> list[bytes]:
        repo = self.locate(f"/{npub}/{name}.git")
        if repo is None:
            return _html(environ, start_response, "404 Not Found", not_hosted_page(npub, name))
        mine = [a for a in self.index.announcements(repo.identifier) if a.owner == repo.owner]
        announcement = announcement_lookup(mine)(repo.owner, repo.identifier)
        assert announcement is not None  # locate() found one
        held = self.purgatory.announcement(repo.owner, repo.identifier) == announcement
        secure = environ.get("wsgi.url_scheme") == "https"
        domain = self.domain or str(environ.get("HTTP_HOST", ""))
        page = landing_page(
            announcement,
            clone_url=clone_url_of_ours(announcement, domain)
            or f"http{'s' if secure else ''}://{domain}/{npub_encode(repo.owner)}/"
            f"{quote(repo.identifier)}.git",
            relay_url=relay_url_of_ours(announcement, domain)
            or f"ws{'s' if secure else ''}://{domain}",
            held=held,
        )
        return _html(environ, start_response, "200 OK", page)

    # -- which repositories exist (S10.5) ---------------------------------------------------

    def locate(self, url_path: str) -> _Repo | None:
        """``/<npub>/<identifier>.git`` of an accepted or held announcement, else None (404).

        ``url_path`` is ``PATH_INFO`` percent-decoded once (WSGI) and read as UTF-8 by the
        bridge (S15.3); it is not decoded again, so an encoded ``%2F`` can never smuggle a path
        separator into the identifier.
        """
        parts = url_path.strip("/").split("/")
        if len(parts) != 2 or not parts[1].endswith(".git"):
            return None
        npub, identifier = parts[0], parts[1][: -len(".git")]
        if identifier_problem(identifier):
            return None
        try:
            owner = npub_decode(npub)
        except ValueError:
            return None
        self.purgatory.refresh()  # S19.2: an announcement or state another node holds counts
        if not any(a.owner == owner for a in self.index.announcements(identifier)):
            return None
        path = self.index.repo_path(owner, identifier)
        if not is_git_dir(path) or not path.resolve().is_relative_to(self.repos_root):
            return None
        return _Repo(owner, identifier, path)

    def resolve(self, url_path: str) -> RepoTarget | None:
        repo = self.locate(url_path)
        return RepoTarget(repo.path, self.serve_config) if repo else None

    # -- push authorisation (S10.6) ---------------------------------------------------------

    def before_receive_pack(self, environ: dict[str, Any], body: IO[bytes]) -> str | None:
        repo = self.locate(_repo_path(environ))
        if repo is None:
            return "repository not found"
        try:
            push = read_push_commands(body)
        except MalformedPush as exc:
            return f"malformed push: {exc}"
        pack_bytes = _remaining(body)
        decision = self.authorise(repo, push, pack_bytes)
        if isinstance(decision, str):
            logger.info("refused push to %s: %s", repo.path, decision)
            return decision
        if decision.new_placeholders:  # receive-pack measures what it would keep, too
            environ[CGI_ENV_KEY] = self.quota.hook_env()
        decision.token = self.pushes.begin(repo.path, decision.new_placeholders)
        environ[_ENV_KEY] = decision
        return None

    def authorise(self, repo: _Repo, push: PushRequest, pack_bytes: int = 0) -> _Push | str:
        """The push's fate: a refusal text, or what to do once it has landed."""
        changes = [c for c in push.commands if c.old != c.new]
        placeholders: list[tuple[str, str]] = []
        for update in changes:
            if update.ref.startswith(NOSTR_PREFIX):
                refusal = self._check_nostr_ref(update)
                if refusal:
                    return refusal
                placeholders.append((update.ref[len(NOSTR_PREFIX) :], update.new))
            elif not update.ref.startswith(ALIGNED):
                return (
                    f"{update.ref}: only refs/heads/*, refs/tags/* and refs/nostr/<event-id> "
                    "may be pushed"
                )
        state = None
        if any(c.ref.startswith(ALIGNED) for c in changes):
            match = self._matching_state(repo, changes)
            if isinstance(match, str):
                return match
            state = match
        new = [i for i, _ in placeholders if self._known_pr_commit(i) is None]
        in_flight = self.pushes.placeholders(repo.path)
        refusal = self.quota.refusal(repo.owner, repo.identifier, new, in_flight, pack_bytes)
        if refusal:
            return refusal
        return _Push(repo, placeholders, state, self.quota.adds(repo.owner, repo.identifier, new))

    def _check_nostr_ref(self, update: RefUpdate) -> str | None:
        event_id = update.ref[len(NOSTR_PREFIX) :]
        if not _EVENT_ID.fullmatch(event_id):
            return f"{update.ref}: refs/nostr/ takes a 64-character lowercase hex event id"
        if update.new == ZERO:
            return f"{update.ref}: refs/nostr/ refs cannot be deleted by a push"
        commit = self._known_pr_commit(event_id)
        if commit is not None and commit != update.new:
            return f"{update.ref}: event {event_id} names commit {commit}, not {update.new}"
        return None

    def _known_pr_commit(self, event_id: str) -> str | None:
        held = self.purgatory.pr(event_id)
        if held is not None:
            return held.commit
        event = self.store.get(event_id)
        if event is not None and event.kind in kinds.PR_KINDS:
            try:
                return PullRequest.from_event(event).commit
            except ValueError:
                return None
        return None

    def _matching_state(self, repo: _Repo, changes: list[RefUpdate]) -> RepositoryState | str:
        """The latest authorised state whose refs equal the repository's refs after the push."""
        after = {n: v for n, v in list_refs(repo.path).items() if n.startswith(ALIGNED)}
        for update in changes:
            if not update.ref.startswith(ALIGNED):
                continue
            if update.new == ZERO:
                after.pop(update.ref, None)
            else:
                after[update.ref] = update.new
        maintainers = self.index.maintainers(repo.owner, repo.identifier)
        candidates = [
            s
            for s in [
                *self.purgatory.states_for(repo.identifier),
                *self.index.stored_states(repo.identifier),
            ]
            if s.author in maintainers
        ]
        matches = [s for s in candidates if _oid_refs(s) == after]
        if matches:
            return max(matches, key=lambda s: (s.event.created_at, [-ord(c) for c in s.event.id]))
        return _explain(after, candidates)

    def after_receive_pack(self, environ: dict[str, Any], ok: bool) -> None:
        push: _Push | None = environ.get(_ENV_KEY)
        if push is None:
            return
        try:
            if ok:
                self._landed(push)
        finally:
            if push.token is not None:
                self.pushes.end(push.token)

    def _landed(self, push: _Push) -> None:
        owner, identifier = push.repo.owner, push.repo.identifier
        # receive-pack ends well even when it declined refs (the pre-receive hook, a stale
        # old value): a placeholder is what the ref now *is*, not what was asked for
        refs = list_refs(push.repo.path) if push.placeholders else {}
        for event_id, commit in push.placeholders:
            if refs.get(NOSTR_PREFIX + event_id) != commit:
                logger.info("refs/nostr/%s was not updated by the push", event_id)
            elif self._known_pr_commit(event_id) is None:
                outcome = self.purgatory.add_placeholder(event_id, commit, owner, identifier)
                if outcome is not AddOutcome.DUPLICATE:
                    logger.info(
                        "placeholder for refs/nostr/%s at %s in %s",
                        event_id,
                        commit,
                        push.repo.path,
                    )
        if push.state is not None:
            self.purgatory.extend_announcement(push.repo.owner, push.repo.identifier)
        logger.info("push landed in %s; releasing what it satisfies", push.repo.path)
        self.sync.git_data_arrived(push.repo.identifier)


def _html(
    environ: dict[str, Any], start_response: Callable[..., Any], status: str, page: str
) -> list[bytes]:
    body = page.encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
        ],
    )
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def _remaining(body: IO[bytes]) -> int:
    """Bytes after the read position: the pack, once the commands were read."""
    here = body.tell()
    end = body.seek(0, 2)
    body.seek(here)
    return end - here


def _repo_path(environ: dict[str, Any]) -> str:
    path = request_path(environ) or ""  # UTF-8, decoded once (S15.3)
    return path[: -len("/git-receive-pack")] if path.endswith("/git-receive-pack") else path


def _oid_refs(state: RepositoryState) -> dict[str, str]:
    """The refs a state pins to objects (symbolic ``ref:`` values name no object, S2.1)."""
    return {name: value for name, value in state.refs.items() if is_oid(value)}


def _explain(after: dict[str, str], candidates: list[RepositoryState]) -> str:
    """A refusal that says what is wrong relative to the newest authorised state."""
    if not candidates:
        return (
            "no repository state (kind 30618) by a maintainer of this repository is known; "
            "publish the state event before pushing"
        )
    newest = max(candidates, key=lambda s: (s.event.created_at, s.event.id))
    wanted = _oid_refs(newest)
    problems = []
    for name in sorted(set(wanted) | set(after)):
        if name not in after:
            problems.append(f"{name} missing (state {newest.event.id[:12]} has it)")
        elif name not in wanted:
            problems.append(f"{name} is not in the state")
        elif wanted[name] != after[name]:
            problems.append(
                f"{name} would be at {after[name][:12]}, the state says {wanted[name][:12]}"
            )
    detail = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
    return f"push does not match any authorised repository state: {detail}"
