"""Admission: what the relay keeps, holds in purgatory or refuses (S10.4) — domain logic.

:mod:`.intake` is the seam the transport calls, ``accept_event(event, source) -> Result``, with
the plain NIP-01 default; :mod:`.rules` holds the pure GRASP-01 rules; :mod:`.write_policy`
(:class:`~.write_policy.GraspWritePolicy`) gathers their facts and performs the effects.

This package never imports :mod:`grasp.relay` (tests/unit/test_layout.py checks it): the relay
uses admission, not the other way round, so the rules can be tested without a server.
"""
