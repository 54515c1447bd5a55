"""Exceptions of the git data layer.

A fetch can fail in many ways that callers treat differently only by *kind* (metrics label,
log level, whether to try the next URL), so every fetch failure is one class, ``FetchError``,
with a machine-readable ``reason`` (S7.2, S13.1 ``purgatory_fetch_errors_total{reason}``).
"""

from __future__ import annotations

from collections.abc import Iterable

#: The closed set of ``FetchError.reason`` values.
FETCH_ERROR_REASONS = frozenset(
    {
        "policy",  # the URL (or a redirect) is refused by the URL policy (S3.4)
        "dns",  # the host name does not resolve
        "refused",  # the TCP connection could not be made (refused, unreachable, reset on connect)
        "tls",  # TLS handshake or certificate verification failed
        "timeout",  # total deadline, connect timeout or per-read timeout exceeded
        "not_found",  # HTTP 404: no repository at this URL
        "http_error",  # any other non-200 HTTP status (401, 403, 500, ...)
        "protocol",  # the server spoke something we cannot use: malformed, truncated, dumb HTTP
        "too_large",  # the pack or the ref advertisement exceeded its FetchLimits cap (S14.1)
        "local",  # our side failed: target repository missing or unreadable, disk error
    }
)


class FetchError(Exception):
    """A remote fetch failed; the target repository is unchanged.

    ``reason`` is one of :data:`FETCH_ERROR_REASONS`; ``detail`` is for humans (logs).
    """

    def __init__(self, url: str, reason: str, detail: str = "") -> None:
        if reason not in FETCH_ERROR_REASONS:
            raise ValueError(f"unknown FetchError reason {reason!r}")
        super().__init__(url, reason, detail)
        self.url = url
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"fetch from {self.url} failed ({self.reason}): {self.detail}"


class TooLarge(Exception):
    """More data arrived than a cap allows: the pack (S7.2) or the ref advertisement (S14.1).

    Raised inside a fetch and reported as ``FetchError(too_large)``.
    """


class AbsentObjectError(ValueError):
    """An operation would reference objects the repository does not hold (S8.4).

    Raised before anything is written, so the repository is unchanged.
    """

    def __init__(self, repo_path: object, oids: Iterable[str]) -> None:
        self.repo_path = repo_path
        self.oids = sorted(oids)
        super().__init__(f"{repo_path}: objects not present: {', '.join(self.oids)}")


class RefConflictError(RuntimeError):
    """A ref changed under us between reading and writing it (compare-and-swap failed)."""


class GitCommandError(RuntimeError):
    """A local ``git`` subprocess failed."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        self.args_list = args
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{' '.join(args)} exited with {returncode}: {stderr.strip()}")
