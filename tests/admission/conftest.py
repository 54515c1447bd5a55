"""Admission tests run the write policy over a real data layer (``world``), with no relay."""

from tests.support.world import world  # noqa: F401  (fixture re-exported)
