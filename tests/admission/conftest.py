"""Admission tests run the write policy over a real data layer (``world``), with no relay."""

import pytest

from tests.support.world import world  # noqa: F401  (fixture re-exported)


@pytest.fixture
def policy(world):  # noqa: F811 - ``world`` is the fixture imported above
    """The GRASP write policy over ``world``, with a recording sync port (``policy.sync_port``)
    whose ``release_now`` runs the real release workflow in the test's greenlet."""
    from grasp.admission.write_policy import GraspWritePolicy
    from tests.admission.test_write_policy import DOMAIN, RecordingSync

    sync = RecordingSync(world)
    policy = GraspWritePolicy(
        domain=DOMAIN,
        index=world.index,
        store=world.store,
        purgatory=world.purgatory,
        sync=sync,
        notify=world.notified.append,
    )
    policy.sync_port = sync
    return policy
