"""Peers (S17, GRASP-02 proactive sync): the relays this one copies NIP-34 events from.

:mod:`.discovery` (which URLs become peers: ``relays`` tags, ``--bootstrap-relay``; never
ourselves, never what the fetch policy refuses), :mod:`.health` (backoff, rate-limit cool-down,
the naughty list: pure, clock-injected), :mod:`.filters` (what is asked of a peer, batched under
the live-filter cap), :mod:`.waiting` (events refused for a parent not known yet, retried when it
is accepted), :mod:`.reconcile` (NIP-77 history with a REQ/EOSE fallback over one connection),
:mod:`.peer` (one greenlet per peer, a thin shell) and :mod:`.network` (all peers, their
persistence, the write-policy wrapper that discovers and retries, the status rows).

Nothing is imported here, so importing one module does not pull in the others.
"""
