"""The domain tests share the ``world`` fixture: a relay's data layer without the relay."""

from tests.support.world import world  # noqa: F401  (fixture re-exported)
