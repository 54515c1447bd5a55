"""Purgatory: NIP-34 events accepted but not served until their git data is present (S1, S2, S9).

:class:`~grasp.purgatory.store.PurgatoryStore` is clock-injected and a cache of purgatory's
tables in the event database (S9.1, ``grasp/store/held.py``): every change is committed there
before it is answered, and a start rebuilds the cache from them. An older relay's
``<data-dir>/purgatory-state.json`` is imported once, then deleted (docs/durability.rst).
"""

from grasp.purgatory.entries import (
    DUPLICATE_RESULT,
    EXPIRED_RESULT,
    HELD_RESULT,
    AddOutcome,
    Source,
    SweepResult,
)
from grasp.purgatory.persistence import STATE_FILENAME, PurgatoryFileError
from grasp.purgatory.store import DEFAULT_EXPIRY_SECS, EXPIRED_MEMORY_SECS, PurgatoryStore

__all__ = [
    "DEFAULT_EXPIRY_SECS",
    "DUPLICATE_RESULT",
    "EXPIRED_MEMORY_SECS",
    "EXPIRED_RESULT",
    "HELD_RESULT",
    "STATE_FILENAME",
    "AddOutcome",
    "PurgatoryFileError",
    "PurgatoryStore",
    "Source",
    "SweepResult",
]
