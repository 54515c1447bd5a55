"""Event kinds this relay gives meaning to, and the NIP-01 storage classes of all kinds.

The storage class decides what the event store keeps (S11.2): every regular event, only the
latest replaceable/addressable version, and no ephemeral event at all.
"""

from __future__ import annotations

from enum import Enum

DELETION = 5
PATCH = 1617
PULL_REQUEST = 1618
PULL_REQUEST_UPDATE = 1619
ISSUE = 1621
STATUS_KINDS = frozenset({1630, 1631, 1632, 1633})
COMMENT = 1111
USER_GRASP_LIST = 10317
REPO_ANNOUNCEMENT = 30617
REPO_STATE = 30618

#: Kinds that may be held in purgatory while their git data is missing (S1.1).
PR_KINDS = frozenset({PULL_REQUEST, PULL_REQUEST_UPDATE})

MAX_KIND = 65535


class StorageClass(Enum):
    REGULAR = "regular"
    REPLACEABLE = "replaceable"
    EPHEMERAL = "ephemeral"
    ADDRESSABLE = "addressable"


def storage_class(kind: int) -> StorageClass:
    """NIP-01 §"Kinds": which events of ``kind`` a relay keeps."""
    if kind in (0, 3) or 10000 <= kind < 20000:
        return StorageClass.REPLACEABLE
    if 20000 <= kind < 30000:
        return StorageClass.EPHEMERAL
    if 30000 <= kind < 40000:
        return StorageClass.ADDRESSABLE
    return StorageClass.REGULAR


def is_replaceable(kind: int) -> bool:
    return storage_class(kind) is StorageClass.REPLACEABLE


def is_addressable(kind: int) -> bool:
    return storage_class(kind) is StorageClass.ADDRESSABLE
