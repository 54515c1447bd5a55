"""The relay process: one gevent.pywsgi port for NIP-01 websockets, NIP-11 and mounted HTTP apps.

The process itself lives here: :mod:`.app` (assembly and start/stop order), :mod:`.cli`
(``grasp-relay``), :mod:`.config` (every option, S12), :mod:`.maintenance` (the purgatory
sweeper) and :mod:`.git_http` (the git service). Its concerns are grouped below it:
:mod:`.transport` (the NIP-01 transport: websocket, connection, session, hub, HTTP routing,
NIP-11, and the assembly of a plain relay), :mod:`.sync_sources` (GRASP-02 event sync from
other relays) and :mod:`.observe` (metrics and the status pages). What the relay accepts is
decided in :mod:`grasp.admission`, which is domain logic and knows nothing of the relay.

Nothing is imported here on purpose: :mod:`.cli` must monkey-patch gevent before ``socket`` and
``threading`` are used, and importing this package must not get in the way.
"""
