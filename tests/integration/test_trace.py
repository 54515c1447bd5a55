"""The committed end-to-end trace (S13.3): decisions of a real relay's actors replay exactly.

``tests/traces/e2e_backoff.jsonl`` was recorded by relay B of
``test_faults.test_http_500_then_recovery_backs_off_then_releases`` (``--trace``; rerun with
``E2E_RECORD_TRACE=1`` to refresh it). Replaying needs no process and no network, so these are
not marked slow.
"""

from __future__ import annotations

import dataclasses

from actors.trace.format import load_trace
from actors.trace.replay import replay
from tests.integration.backoff_trace import (
    BACKOFF_TRACE,
    THROTTLE,
    assert_backoff_trace_replays,
    backoff_config,
)


def test_committed_e2e_trace_replays_every_actor():
    lines = assert_backoff_trace_replays(BACKOFF_TRACE)
    kinds = {line.type for line in lines if line.receiver == THROTTLE}
    assert {"TryStart", "RequestDone"} <= kinds  # the throttle really took part in each fetch


def test_replaying_with_another_backoff_diverges():
    """The comparison can fail: the unscaled 20 s backoff would not retry when the relay did."""
    lines = load_trace(BACKOFF_TRACE)
    unscaled = dataclasses.replace(backoff_config(), backoff_scale=1.0)
    assert not replay(lines, "Scheduler", unscaled).matches
