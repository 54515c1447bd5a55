"""NIP-34 models: repository announcements (30617), states (30618) and PRs (1618/1619).

Parsing is where untrusted tags become ref names and object ids that later reach git, so the
models refuse what git would misread: identifiers that are path tricks (S10.4), ref names that
``git check-ref-format`` would reject, and object ids that are not lowercase hex. Each refusal
is a :class:`Nip34Error` whose :attr:`~Nip34Error.message` is a complete ``invalid:`` text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from grasp.nostr import kinds
from grasp.nostr.address import Address
from grasp.nostr.event import Event, supersedes
from grasp.nostr.results import Prefix

_HEX64 = re.compile(r"[0-9a-f]{64}")
_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # sha1 or sha256 repositories
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
#: S14.2: ``<identifier>.git`` is one directory name, and file names have at most 255 bytes.
MAX_IDENTIFIER_BYTES = 255 - len(".git")
#: A ref is a file below ``refs/``; git and dulwich write ``<name>.lock`` beside it first, so a
#: path component of a ref name may have 250 bytes. The whole name is capped well below
#: PATH_MAX once the repository's own path is in front of it.
MAX_REF_COMPONENT_BYTES = 255 - len(".lock")
MAX_REF_BYTES = 1024
SYMBOLIC_PREFIX = "ref: "
PEELED_SUFFIX = "^{}"
HEADS = "refs/heads/"
TAGS = "refs/tags/"


class Nip34Error(ValueError):
    """A NIP-34 event this relay cannot use; :attr:`message` is the full ``invalid:`` text."""

    def __init__(self, text: str) -> None:
        self.message = Prefix.INVALID.wire(text)
        super().__init__(self.message)


def identifier_problem(identifier: str) -> str | None:
    """Why ``identifier`` cannot name a repository directory (S10.4), or None when it can."""
    if identifier == "":
        return "repository identifier is empty"
    if identifier in (".", ".."):
        return f"repository identifier {identifier!r} is not allowed"
    for bad, name in (("/", "'/'"), ("\\", "a backslash"), ("\x00", "a NUL character")):
        if bad in identifier:
            return f"repository identifier contains {name}"
    if len(identifier.encode("utf-8", "surrogatepass")) > MAX_IDENTIFIER_BYTES:
        return f"identifier too long (max {MAX_IDENTIFIER_BYTES} bytes)"
    return None


def ref_name_problem(name: str) -> str | None:
    """Why a state's ref name cannot become a ref file (S14.2), or None when it can."""
    encoded = name.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_REF_BYTES:
        return f"ref name too long (max {MAX_REF_BYTES} bytes)"
    if any(len(part) > MAX_REF_COMPONENT_BYTES for part in encoded.split(b"/")):
        return f"ref name has a path component longer than {MAX_REF_COMPONENT_BYTES} bytes"
    if not is_valid_ref_name(name):
        return f"state names an invalid ref {name[:100]!r}"
    return None


def validate_identifier(identifier: str) -> str:
    """Return ``identifier`` unchanged or raise :class:`Nip34Error` (S10.4)."""
    problem = identifier_problem(identifier)
    if problem:
        raise Nip34Error(problem)
    return identifier


def is_valid_ref_name(name: str) -> bool:
    """``git check-ref-format`` rules, so a state can never make git write outside ``refs/``."""
    if not name or name.endswith(("/", ".")) or name.startswith("/") or name == "@":
        return False
    if _REF_FORBIDDEN.search(name):
        return False
    return all(
        part and not part.startswith(".") and not part.endswith(".lock") for part in name.split("/")
    )


def is_oid(value: str) -> bool:
    """A full lowercase hex object id (sha1 or sha256)."""
    return bool(_OID.fullmatch(value))


def _require_kind(event: Event, allowed: Iterable[int], what: str) -> None:
    if event.kind not in allowed:
        raise Nip34Error(f"kind {event.kind} is not a {what}")


def _require_identifier(event: Event) -> str:
    d = event.d
    if d is None:
        raise Nip34Error(f"kind {event.kind} event has no 'd' tag")
    return validate_identifier(d)


def _all_values(event: Event, name: str) -> tuple[str, ...]:
    """Every value of every tag called ``name`` (``tag[1:]``), de-duplicated, in event order."""
    values = (value for tag in event.tags_named(name) for value in tag[1:] if value)
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class Announcement:
    """Kind 30617. Unlike ngit-grasp, several ``clone``/``maintainers`` tags are all honoured."""

    event: Event
    identifier: str
    clone_urls: tuple[str, ...]
    relays: tuple[str, ...]
    maintainers: tuple[str, ...]
    name: str | None
    description: str | None
    web: tuple[str, ...]

    @classmethod
    def from_event(cls, event: Event) -> Announcement:
        _require_kind(event, (kinds.REPO_ANNOUNCEMENT,), "repository announcement")
        maintainers = tuple(m for m in _all_values(event, "maintainers") if _HEX64.fullmatch(m))
        return cls(
            event=event,
            identifier=_require_identifier(event),
            clone_urls=_all_values(event, "clone"),
            relays=_all_values(event, "relays"),
            maintainers=maintainers,
            name=event.first_tag("name"),
            description=event.first_tag("description"),
            web=_all_values(event, "web"),
        )

    @property
    def owner(self) -> str:
        """The author: each maintainer of a shared identifier owns a separate repository."""
        return self.event.pubkey

    @property
    def address(self) -> Address:
        return Address(kinds.REPO_ANNOUNCEMENT, self.owner, self.identifier)


@dataclass(frozen=True)
class RepositoryState:
    """Kind 30618 (S2.1): the refs a repository must have, and the HEAD branch."""

    event: Event
    identifier: str
    refs: Mapping[str, str]
    head: str | None

    @classmethod
    def from_event(cls, event: Event) -> RepositoryState:
        """Collect ``refs/heads/*`` and ``refs/tags/*`` tags; peeled ``^{}`` names are ignored."""
        _require_kind(event, (kinds.REPO_STATE,), "repository state")
        identifier = _require_identifier(event)
        refs: dict[str, str] = {}
        for tag in event.tags:
            if (
                len(tag) < 2
                or not tag[0].startswith((HEADS, TAGS))
                or tag[0].endswith(PEELED_SUFFIX)
            ):
                continue
            name, value = tag[0], tag[1]
            if name in refs:
                continue  # the first occurrence of a ref wins
            problem = ref_name_problem(name)
            if problem:
                raise Nip34Error(problem)
            if not (is_oid(value) or _valid_symbolic(value)):
                raise Nip34Error(f"state ref {name[:100]!r} has an invalid value {value[:100]!r}")
            refs[name] = value
        return cls(event, identifier, MappingProxyType(refs), _head_branch(event))

    @property
    def author(self) -> str:
        return self.event.pubkey

    @property
    def needed_oids(self) -> frozenset[str]:
        """Object ids the repository must contain: every ref value except symbolic ones (S2.1)."""
        return frozenset(v for v in self.refs.values() if not v.startswith(SYMBOLIC_PREFIX))

    @property
    def branches(self) -> dict[str, str]:
        return {k[len(HEADS) :]: v for k, v in self.refs.items() if k.startswith(HEADS)}

    @property
    def tags(self) -> dict[str, str]:
        return {k[len(TAGS) :]: v for k, v in self.refs.items() if k.startswith(TAGS)}


def _valid_symbolic(value: str) -> bool:
    target = value[len(SYMBOLIC_PREFIX) :]
    return value.startswith(SYMBOLIC_PREFIX) and ref_name_problem(target) is None


def _head_branch(event: Event) -> str | None:
    """``HEAD`` as ``refs/heads/<b>``; ``ref: `` is optional; anything else is ignored."""
    value = event.first_tag("HEAD")
    if not value:
        return None
    if value.startswith(SYMBOLIC_PREFIX):
        value = value[len(SYMBOLIC_PREFIX) :]
    if value.startswith(HEADS) and len(value) > len(HEADS) and ref_name_problem(value) is None:
        return value
    return None


@dataclass(frozen=True)
class PullRequest:
    """Kind 1618 (PR) or 1619 (PR update) (S2.2)."""

    event: Event
    commit: str
    identifier: str
    repositories: tuple[Address, ...]
    clone_urls: tuple[str, ...]

    @classmethod
    def from_event(cls, event: Event) -> PullRequest:
        """Commit = first ``c`` tag; identifier from the first ``30617:`` ``a`` tag.

        The coordinate is split on its first two colons only, so identifiers containing ``:``
        survive (the original truncates them; S2.2 deviation).
        """
        _require_kind(event, kinds.PR_KINDS, "pull request")
        commit = event.first_tag("c")
        if not commit:
            raise Nip34Error("pull request has no 'c' tag")
        if not is_oid(commit):
            raise Nip34Error(f"pull request 'c' tag is not an object id: {commit[:100]!r}")
        repositories = []
        for value in event.tag_values("a"):
            address = Address.parse(value)
            if address is not None and address.kind == kinds.REPO_ANNOUNCEMENT:
                validate_identifier(address.d)
                repositories.append(address)
        if not repositories:
            raise Nip34Error(
                "pull request names no repository ('a' tag 30617:<owner>:<identifier>)"
            )
        return cls(
            event=event,
            commit=commit,
            identifier=repositories[0].d,
            repositories=tuple(dict.fromkeys(repositories)),
            clone_urls=_all_values(event, "clone"),
        )

    @property
    def event_id(self) -> str:
        return self.event.id

    @property
    def owners(self) -> tuple[str, ...]:
        """Owner pubkeys of every referenced repository, in tag order."""
        return tuple(dict.fromkeys(a.pubkey for a in self.repositories))

    @property
    def identifiers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.d for a in self.repositories))

    def references(self, identifier: str) -> bool:
        """Whether any ``a`` tag names ``identifier`` (S2.3
        counts every a tag, not only the first)."""
        return any(a.d == identifier for a in self.repositories)


AnnouncementLookup = Callable[[str, str], "Announcement | None"]


def maintainer_set(owner: str, identifier: str, lookup: AnnouncementLookup) -> frozenset[str]:
    """The recursive maintainer set of ``owner`` for ``identifier`` (S10.3).

    ``owner`` plus the maintainers listed in owner's announcement for ``identifier``, then theirs,
    and so on. Directional (a maintainer who does not list the owner back does not gain the
    owner's maintainers) and cycle-safe. ``lookup(pubkey, identifier)`` returns that author's
    announcement, from the store *and* announcement purgatory (upstream-behaviour §10.1).
    """
    visited: set[str] = set()
    pending = [owner]
    while pending:
        pubkey = pending.pop()
        if pubkey in visited:
            continue
        visited.add(pubkey)
        announcement = lookup(pubkey, identifier)
        if announcement is not None:
            pending.extend(m for m in announcement.maintainers if m not in visited)
    return frozenset(visited)


def authorizing_owners(
    author: str, identifier: str, owners: Iterable[str], lookup: AnnouncementLookup
) -> list[str]:
    """The owners (in the given order) whose maintainer set contains ``author`` (S8.2, S10.4).

    A state event is acceptable when this is non-empty; release aligns only these owners' repos.
    """
    return [o for o in dict.fromkeys(owners) if author in maintainer_set(o, identifier, lookup)]


def announcement_lookup(announcements: Iterable[Announcement]) -> AnnouncementLookup:
    """A lookup for :func:`maintainer_set` over a collection; the newest per (owner, d) wins."""
    best: dict[tuple[str, str], Announcement] = {}
    for announcement in announcements:
        key = (announcement.owner, announcement.identifier)
        held = best.get(key)
        if held is None or supersedes(announcement.event, held.event):
            best[key] = announcement
    return lambda pubkey, identifier: best.get((pubkey, identifier))


def latest_state(states: Iterable[RepositoryState]) -> RepositoryState | None:
    """The authoritative state among ``states``: highest created_at, tie -> lowest id (S8.2)."""
    result: RepositoryState | None = None
    for state in states:
        if result is None or supersedes(state.event, result.event):
            result = state
    return result
