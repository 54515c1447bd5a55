"""Sync sources (S10.7, GRASP-02): copy NIP-34 events from other relays into our write path.

:mod:`.source` (one greenlet per source relay: connect, page the history, stay live),
:mod:`.settings` (:class:`~.settings.SyncSourceSettings`, the numbers every source shares, built
once from the relay's ``Config``), :mod:`.history` (paging and dependency order), :mod:`.wire`
(bounded websocket frames and relay messages) and :mod:`.status` (per-source counters and the
status record shown on ``/status``).

Nothing is imported here, so importing one module does not pull in the others.
"""
