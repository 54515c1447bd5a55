"""Pushes being received, per repository (S14.3).

Two parties need to know about a push between its authorisation and the end of
``git-receive-pack``: the placeholder quota counts the placeholders it will add (so concurrent
pushes cannot overshoot ``--placeholder-max-per-repo`` together), and the placeholder cleanup
leaves a repository alone while a push lands in it (the push may point a ref at an object the
cleanup would delete). Greenlets only: nothing here yields.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PushesInFlight"]


@dataclass(frozen=True)
class _Push:
    number: int
    repo: str
    placeholders: int


class PushesInFlight:
    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._running: dict[int, _Push] = {}

    def begin(self, repo_path: Path, placeholders: int = 0) -> int:
        """A push to ``repo_path`` was authorised; returns its token for :meth:`end`."""
        push = _Push(next(self._numbers), _key(repo_path), placeholders)
        self._running[push.number] = push
        return push.number

    def end(self, token: int) -> None:
        """The push finished (landed, failed or was never run); ending twice is harmless."""
        self._running.pop(token, None)

    def busy(self, repo_path: Path) -> bool:
        key = _key(repo_path)
        return any(p.repo == key for p in self._running.values())

    def placeholders(self, repo_path: Path) -> int:
        """Placeholders that pushes in flight to ``repo_path`` will add if they land."""
        key = _key(repo_path)
        return sum(p.placeholders for p in self._running.values() if p.repo == key)


def _key(repo_path: Path) -> str:
    return str(Path(repo_path).resolve())
