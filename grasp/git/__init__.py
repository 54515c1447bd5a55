"""The git data layer: remote fetches with dulwich, local object and ref operations.

Public API (import from ``grasp.git``):

* remote: :func:`fetch_oids`, :class:`FetchLimits`, :class:`FetchPolicy`, :func:`check_url`,
  :class:`CheckedURL`, :class:`FetchError` (``reason`` in :data:`FETCH_ERROR_REASONS`);
* objects: :func:`missing_oids`, :func:`copy_objects`;
* refs: :func:`align_refs` -> :class:`AlignResult`, :func:`set_nostr_ref`,
  :func:`delete_nostr_ref`, :func:`list_refs`, :func:`read_head`; :class:`AbsentObjectError`,
  :class:`RefConflictError`;
* layout: :func:`ensure_bare_repo`, :func:`create_bare_repo`, :func:`repo_path_for`,
  :func:`validate_identifier`;
* upkeep: :func:`prune_unreachable` (what only expired placeholders reached, S14.3) and
  :class:`PushesInFlight` (pushes between authorisation and landing);
* serving (import from their modules): ``grasp.git.http_backend.make_git_http_app`` (the WSGI
  bridge to ``git http-backend``) and ``grasp.git.receive.read_push_commands`` (push commands
  for authorisation).

Runtime needs: the ``git`` CLI (``index-pack`` for received packs, ``fetch`` for local copies,
``http-backend`` for serving), and a gevent-monkey-patched process (sockets must be cooperative
for the fetch deadline and for the hub to keep running during a fetch).

Nothing here imports ``actors`` or ``messages`` (ARCHITECTURE §2).
"""

from grasp.git.errors import (
    FETCH_ERROR_REASONS,
    AbsentObjectError,
    FetchError,
    GitCommandError,
    RefConflictError,
)
from grasp.git.fetch import FetchLimits, fetch_oids
from grasp.git.objects import copy_objects, missing_oids
from grasp.git.prune import PruneResult, prune_unreachable
from grasp.git.pushes import PushesInFlight
from grasp.git.refs import (
    AlignResult,
    align_refs,
    delete_nostr_ref,
    list_refs,
    read_head,
    set_nostr_ref,
)
from grasp.git.repos import (
    create_bare_repo,
    ensure_bare_repo,
    remove_interrupted_work,
    repo_path_for,
    validate_identifier,
)
from grasp.git.url_policy import CheckedURL, FetchPolicy, check_url

__all__ = [
    "FETCH_ERROR_REASONS",
    "AbsentObjectError",
    "AlignResult",
    "CheckedURL",
    "FetchError",
    "FetchLimits",
    "FetchPolicy",
    "PruneResult",
    "PushesInFlight",
    "GitCommandError",
    "RefConflictError",
    "align_refs",
    "check_url",
    "copy_objects",
    "create_bare_repo",
    "delete_nostr_ref",
    "ensure_bare_repo",
    "fetch_oids",
    "list_refs",
    "missing_oids",
    "prune_unreachable",
    "read_head",
    "remove_interrupted_work",
    "repo_path_for",
    "set_nostr_ref",
    "validate_identifier",
]
