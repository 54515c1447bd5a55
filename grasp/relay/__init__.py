"""The relay process: one gevent.pywsgi port for NIP-01 websockets, NIP-11 and mounted HTTP apps.

Modules: ``config`` lives in :mod:`grasp.config`; here :mod:`.websocket` (upgrade handler),
:mod:`.connection` (one websocket: reader, writer greenlet, bounded outbox), :mod:`.session`
(NIP-01), :mod:`.hub` (live fan-out), :mod:`.ingest` (write-policy seam), :mod:`.nip11`,
:mod:`.http` (routing, CORS, mounts), :mod:`.server` (assembly) and :mod:`.cli` (``grasp-relay``).

Nothing is imported here on purpose: :mod:`.cli` must monkey-patch gevent before ``socket`` and
``threading`` are used, and importing this package must not get in the way.
"""
