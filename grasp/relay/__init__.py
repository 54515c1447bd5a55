"""The relay process: one gevent.pywsgi port for NIP-01 websockets, NIP-11 and mounted HTTP apps.

The process itself lives here: :mod:`.app` (start/stop order), :mod:`.assembly` (each part
built and wired), :mod:`.cli` (``grasp-relay``), :mod:`.config` (every option, S12),
:mod:`.maintenance` (the purgatory sweeper), :mod:`.heartbeat` (downtime credit, S9.1),
:mod:`.fetch_checks` (start-up warnings) and :mod:`.git_service` (git over HTTP, GRASP-06, the
landing pages). Its concerns are grouped below it: :mod:`.transport` (the NIP-01 transport:
websocket, connection, session, hub, HTTP routing, NIP-11, NIP-77, and the assembly of a plain
relay), :mod:`.sync_sources` (S10.7 sync sources), :mod:`.peers` (GRASP-02 peers, S17) and
:mod:`.observe` (metrics and the status pages). What the relay accepts is decided in
:mod:`grasp.admission`, which is domain logic and knows nothing of the relay.

Nothing is imported here on purpose: :mod:`.cli` must monkey-patch gevent before ``socket`` and
``threading`` are used, and importing this package must not get in the way.
"""
