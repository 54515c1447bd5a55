"""Fetching needed objects from a remote git server (S7, SyncContext.fetch_oids).

The strategy, in order (S7.1):

1. Objects already present are not fetched; when nothing is missing there is no network use.
2. One fetch asks for all missing OIDs at once, protocol v2 first (in v2 a server hands out any
   object it has, advertised or not; dulwich falls back to v0 for servers that only speak v0).
3. A server that refuses the wants usually names the culprit ("not our ref <oid>"): those OIDs
   are dropped and the rest asked again.  Each round drops at least one OID, so this ends.
4. If the refusal named nothing (dulwich.web and other v0 servers answer HTTP 500), or OIDs were
   dropped by a v0 server (where "not our ref" may only mean "not advertised"), the last resort
   is fetching every advertised ref tip; the needed OIDs may be among their history.  After a
   v2 refusal this is skipped: v2 refuses an OID only when the server does not have it at all.

Negotiation sends "haves" from every ref of the target that points (through tags) at a commit:
``refs/heads/*``, ``refs/tags/*`` and ``refs/nostr/*`` alike; dulwich alone would only use
``refs/heads/*`` and re-download whole histories (S7.3, python-ecosystem.md §2c).  Fetched
objects stay unreferenced; release creates the refs.

Bounds (S7.2): ``FetchLimits.deadline_secs`` for the whole call (a ``gevent.Timeout`` around DNS,
transfer and indexing), ``read_timeout_secs`` per socket connect and read (urllib3), and
``max_bytes`` of response data.  The ref advertisement has caps of its own (S14.1,
``max_advertisement_bytes`` and ``max_refs``) and is parsed as a stream that keeps only what the
attempt needs: nothing for the fixed wants (haves come from the local repository), and for the
all-tips fallback only the advertised tips the target lacks (``advert.py``).

Any failure is a :class:`FetchError`, and the repository is then exactly as before, because a
pack is only installed after it was received and indexed completely (see ``pack_ingest.py``).
The function blocks the calling greenlet, never the hub (S7.4): socket I/O is cooperative (the
process must be monkey-patched, as the relay and the tests are), the response reader yields to
the hub every 20 ms of parsing, and the pack is indexed by a ``git index-pack`` subprocess.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import gevent
import urllib3.exceptions
from dulwich.client import HTTPProxyUnauthorized, HTTPUnauthorized
from dulwich.errors import NotGitRepository
from dulwich.object_store import ObjectStoreGraphWalker
from dulwich.objects import ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from grasp.git.advert import AdvertLimits, RefFilter, keep_none
from grasp.git.errors import FetchError
from grasp.git.haves import has_no_haves, have_heads, no_parents
from grasp.git.http_client import (
    ByteBudget,
    GraspHttpGitClient,
    HttpStatusError,
    TooLarge,
    refused_oids,
)
from grasp.git.objects import missing_oids, normalise_oids, presence
from grasp.git.pack_ingest import PackSpool, ingest_pack
from grasp.git.pinned_pool import make_pool_manager
from grasp.git.url_policy import FetchPolicy, Resolver, check_url

logger = logging.getLogger(__name__)

# Exceptions that point at a bug on our side rather than at bad data from the server.
_LIKELY_BUGS = (TypeError, AttributeError, NameError)

_DEFAULT_ADVERT = AdvertLimits()


@dataclass(frozen=True)
class FetchLimits:
    """S7.2 and S14.1 bounds of one ``fetch_oids`` call (``--fetch-timeout-secs`` and friends).

    ``max_advertisement_bytes`` and ``max_refs`` cap each ref advertisement (info/refs plus
    ``ls-refs``); the defaults fit every real forge repository.
    """

    deadline_secs: float = 120.0
    read_timeout_secs: float = 30.0
    max_bytes: int = 1 << 30
    max_advertisement_bytes: int = _DEFAULT_ADVERT.max_bytes
    max_refs: int = _DEFAULT_ADVERT.max_refs

    def __post_init__(self) -> None:
        if min(dataclasses.astuple(self)) <= 0:
            raise ValueError(f"FetchLimits must be positive: {self}")

    @property
    def advertisement(self) -> AdvertLimits:
        return AdvertLimits(self.max_advertisement_bytes, self.max_refs)


class _WantsRefused(Exception):
    """The server rejected the request after seeing the wants, before sending a pack."""

    def __init__(self, cause: FetchError, named: set[str]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.named = named


def fetch_oids(
    repo_path: Path,
    url: str,
    oids: Sequence[str],
    *,
    policy: FetchPolicy,
    limits: FetchLimits,
    resolve: Resolver | None = None,
    on_transfer_end: Callable[[], None] | None = None,
    known_missing: AbstractSet[str] | None = None,
) -> list[str]:
    """Fetch the missing ones of ``oids`` from ``url`` into the bare repository ``repo_path``.

    Returns exactly the OIDs (in input order, without duplicates) that were missing before and
    are present now; objects the server does not have are simply not in the list.  Raises
    :class:`FetchError` when nothing was added (the repository is then unchanged), or
    ``ValueError`` for malformed OIDs.  ``resolve`` replaces DNS resolution (tests).

    ``on_transfer_end`` is called at most once, as soon as the last response of the last round
    has arrived completely and before its pack is indexed: from then on the server sees
    nothing more of this fetch (its connections are closed), so the caller may free the
    domain's slot (S6.1) while ``git index-pack`` runs.  A fetch that fails before that point,
    or needs no network, never calls it.

    ``known_missing``: which of ``oids`` the caller found absent from ``repo_path`` just
    before (the port counts them for S18.1). Given, it spares a second repository open before
    the first request (dulwich config and pack list: 1.3 ms measured, a third of P1's 4.3 ms
    wait).
    """
    wanted = normalise_oids(oids)
    try:
        before = (
            missing_oids(repo_path, wanted)
            if known_missing is None
            else set(wanted).intersection(known_missing)
        )
    except (OSError, NotGitRepository) as exc:
        raise FetchError(
            url, "local", f"cannot read target repository {repo_path}: {exc}"
        ) from None
    if not before:
        return []
    missing = [oid for oid in wanted if oid in before]
    fetch = _Fetch(Path(repo_path), url, policy, limits, resolve, on_transfer_end)
    timer = gevent.Timeout(limits.deadline_secs)
    timer.start()
    try:
        fetch.run(missing)
    except gevent.Timeout as exc:
        if exc is not timer:
            raise
        fetch.fail(FetchError(url, "timeout", f"deadline of {limits.deadline_secs:g} s exceeded"))
    except FetchError as exc:
        fetch.fail(exc)
    finally:
        timer.close()
    still_missing = missing_oids(repo_path, missing)
    fetched = [oid for oid in missing if oid not in still_missing]
    logger.debug("fetched %d of %d missing objects from %s", len(fetched), len(missing), url)
    return fetched


class _Fetch:
    """One ``fetch_oids`` call: the client, the budget and the attempt loop."""

    def __init__(
        self,
        repo_path: Path,
        url: str,
        policy: FetchPolicy,
        limits: FetchLimits,
        resolve: Resolver | None,
        on_transfer_end: Callable[[], None] | None = None,
    ) -> None:
        self.repo_path = repo_path
        self.url = url
        self.policy = policy
        self.limits = limits
        self.resolve = resolve
        self.installed = 0  # packs added to the repository so far
        self.dropped = False  # a round dropped refused OIDs (a v0 server then gets another)
        self._on_transfer_end = on_transfer_end

    def run(self, missing: list[str]) -> None:
        checked = check_url(self.url, self.policy, resolve=self.resolve)
        pins = {(checked.scheme, checked.host, checked.port): checked.address}
        pool = self.pool = make_pool_manager(
            self.policy, pins, read_timeout=self.limits.read_timeout_secs, resolve=self.resolve
        )
        self.client = GraspHttpGitClient(
            self.url, pool, ByteBudget(self.limits.max_bytes), self.limits.advertisement
        )
        try:
            self._fetch_with_fallback(missing)
            self._transfer_ended()  # every round answered (some perhaps refused): over too
        finally:
            pool.clear()

    def fail(self, error: FetchError) -> None:
        """Raise ``error`` unless a pack was already installed.

        Only the fallback round can fail after an earlier round added objects; the repository has
        changed then, so the honest outcome is the partial result, not an error claiming it did not.
        """
        if not self.installed:
            raise error
        logger.warning("%s; keeping the objects of the earlier round", error)

    def _fetch_with_fallback(self, missing: list[str]) -> None:
        remaining = list(missing)
        while remaining:
            try:
                self._attempt(_FixedWants(remaining))
                break
            except _WantsRefused as refusal:
                if not refusal.named:
                    logger.debug(
                        "%s refused the wants without naming any: %s", self.url, refusal.cause
                    )
                    self._fetch_all_tips(missing)
                    return
                logger.debug(
                    "%s does not serve %s; asking for the rest", self.url, sorted(refusal.named)
                )
                self.dropped = True
                remaining = [oid for oid in remaining if oid not in refusal.named]
        if self._more_rounds():
            self._fetch_all_tips(missing)

    def _more_rounds(self) -> bool:
        """After a round that got its answer: may the all-tips fallback still ask the server?
        Only when OIDs were dropped by a v0 server (see the module docstring)."""
        return self.dropped and self.client.protocol_version != 2

    def _fetch_all_tips(self, missing: list[str]) -> None:
        """The last resort: every advertised tip the
        repository lacks, if an OID is still missing."""
        if not missing_oids(self.repo_path, missing):
            return
        logger.debug("falling back to all advertised ref tips of %s", self.url)
        try:
            self._attempt(_NewTips(), last=True)
        except _WantsRefused as refusal:
            raise refusal.cause from None

    def _attempt(self, choose_wants: _Wants, last: bool = False) -> None:
        """One ``fetch_pack`` round trip; installs the pack on success.  After the last round's
        answer (``last``, or no fallback round can follow) the transfer has ended."""
        spool = PackSpool(self.repo_path / "objects", self.repo_path)
        negotiated = False
        wants: list[str] = []

        def determine_wants(
            refs: Mapping[Ref, ObjectID], depth: int | None = None
        ) -> list[ObjectID]:
            nonlocal negotiated, wants
            negotiated = True
            wants = choose_wants(refs)
            return [ObjectID(oid.encode("ascii")) for oid in wants]

        try:
            if isinstance(choose_wants, _FixedWants) and has_no_haves(self.repo_path):
                # Nothing to negotiate with (a new repository's first fetch): no dulwich Repo,
                # whose opening (config, object store, refs) was 0.9 ms of the 1.7 ms of CPU
                # before the first request, in P1's wait (micro-benchmark, issue 16).
                self.client.start_attempt(keep_none)
                walker = ObjectStoreGraphWalker([], no_parents)
                self.client.fetch_pack("", determine_wants, walker, spool.write)
            else:
                with Repo(str(self.repo_path)) as repo:
                    self.client.start_attempt(choose_wants.ref_filter(repo))
                    walker = repo.get_graph_walker(heads=have_heads(repo))
                    self.client.fetch_pack("", determine_wants, walker, spool.write)
        except BaseException as exc:
            spool.close()
            if not isinstance(exc, Exception):
                raise
            error = classify(self.url, exc, local=exc is spool.local_error)
            if negotiated and spool.size == 0 and error.reason in ("protocol", "http_error"):
                named = refused_oids(self.client.server_errors(), set(wants))
                raise _WantsRefused(error, named) from None
            raise error from None
        if last or not self._more_rounds():
            self._transfer_ended()
        if spool.size == 0:
            spool.close()
            return
        try:
            ingest_pack(self.repo_path, spool)
        except Exception as exc:  # git index-pack rejecting the data is the server's fault
            raise classify(self.url, exc, local=True) from None
        self.installed += 1

    def _transfer_ended(self) -> None:
        """The server has sent its last byte: close the connections, then say so (once)."""
        callback, self._on_transfer_end = self._on_transfer_end, None
        if callback is not None:
            self.pool.clear()
            callback()


class _Wants(Protocol):
    """An attempt's wants: which advertised refs to keep, then the wants chosen from them."""

    def ref_filter(self, repo: Repo) -> RefFilter: ...

    def __call__(self, refs: Mapping[Ref, ObjectID]) -> list[str]: ...


class _FixedWants:
    """Wants that do not depend on the advertisement (protocol v2 fetches OIDs directly), so
    no advertised ref is kept."""

    def __init__(self, oids: list[str]) -> None:
        self.oids = list(oids)

    def ref_filter(self, repo: Repo) -> RefFilter:
        return keep_none

    def __call__(self, refs: Mapping[Ref, ObjectID]) -> list[str]:
        return self.oids


class _NewTips:
    """Every advertised tip the target lacks.  Only those are kept, one ref per distinct
    object, while the advertisement streams in; tips the target has are dropped at once."""

    def ref_filter(self, repo: Repo) -> RefFilter:
        store, kept = repo.object_store, set[ObjectID]()
        has = presence(Path(repo.path)) or store.__contains__

        def keep(ref: Ref, sha: ObjectID | None) -> bool:
            if sha is None or len(sha) != 40 or sha in kept or has(sha):
                return False
            kept.add(sha)
            return True

        return keep

    def __call__(self, refs: Mapping[Ref, ObjectID]) -> list[str]:
        return sorted({sha.decode("ascii") for sha in refs.values()})


def classify(url: str, exc: BaseException, *, local: bool = False) -> FetchError:
    """Map anything a fetch can raise to a FetchError with the right ``reason``."""
    if isinstance(exc, FetchError):
        if exc.url != url:  # raised for a host first seen in a redirect
            return FetchError(url, exc.reason, f"redirected to {exc.url}: {exc.detail}")
        return exc
    for err in _causes(exc):
        reason = _reason_of(err)
        if reason is not None:
            return FetchError(url, reason, _describe(exc))
    if local and isinstance(exc, OSError):
        return FetchError(url, "local", _describe(exc))
    if isinstance(exc, _LIKELY_BUGS):
        logger.warning("unexpected error while fetching %s", url, exc_info=exc)
    # Whatever else dulwich raises on bytes it cannot parse (GitProtocolError, HangupException,
    # ChecksumMismatch, ValueError, zlib.error, AssertionError, ...) is the server's fault.
    return FetchError(url, "protocol", _describe(exc))


def _reason_of(err: BaseException) -> str | None:
    if isinstance(err, TooLarge):
        return "too_large"
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, so it is tested first.
    if isinstance(err, urllib3.exceptions.NameResolutionError):
        return "dns"
    if isinstance(err, (urllib3.exceptions.NewConnectionError, ConnectionRefusedError)):
        return "refused"
    if isinstance(err, (urllib3.exceptions.SSLError, ssl.SSLError)):
        return "tls"
    if isinstance(
        err,
        (
            urllib3.exceptions.ConnectTimeoutError,
            urllib3.exceptions.ReadTimeoutError,
            socket.timeout,
        ),
    ):
        return "timeout"
    if isinstance(err, HttpStatusError):
        return "not_found" if err.status == 404 else "http_error"
    if isinstance(err, NotGitRepository):
        return "not_found"
    if isinstance(err, (HTTPUnauthorized, HTTPProxyUnauthorized)):
        return "http_error"
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes/contexts, and the ``reason`` urllib3 hides inside MaxRetryError."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop(0)
        if err is None or any(err is s for s in seen):
            continue
        seen.append(err)
        hidden = err.reason if isinstance(err, urllib3.exceptions.MaxRetryError) else None
        todo += [err.__cause__, err.__context__, hidden]
    return seen


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]
