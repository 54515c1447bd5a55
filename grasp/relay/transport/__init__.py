"""The NIP-01 transport: everything between a socket and the write-policy seam.

:mod:`.websocket` (upgrade handler and the WSGI server), :mod:`.connection` (one websocket:
reader, writer greenlet, bounded outbox), :mod:`.session` (NIP-01 verbs), :mod:`.hub` (live
fan-out to subscriptions), :mod:`.http` (routing, CORS, mounts), :mod:`.nip11` (relay
information) and :mod:`.server` (the assembly of a plain relay). What to do with a valid event
is not decided here: the session hands it to ``accept_event(event, source)``
(:mod:`grasp.admission.intake`).

Nothing is imported here, so importing one module does not pull in the others.
"""
