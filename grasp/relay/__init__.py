"""The relay process: one gevent.pywsgi port for NIP-01 websockets, NIP-11 and mounted HTTP apps.

Transport and protocol layers (configuration lives in :mod:`grasp.config`): :mod:`.websocket`
(upgrade handler), :mod:`.connection` (one websocket: reader, writer greenlet, bounded outbox),
:mod:`.session` (NIP-01), :mod:`.hub` (live fan-out), :mod:`.ingest` (write-policy seam),
:mod:`.nip11`, :mod:`.http` (routing, CORS, mounts), :mod:`.server` (assembly of a plain relay)
and :mod:`.cli` (``grasp-relay``). The GRASP write policy, git serving and the actor wiring
build on these in their own modules.

Nothing is imported here on purpose: :mod:`.cli` must monkey-patch gevent before ``socket`` and
``threading`` are used, and importing this package must not get in the way.
"""
