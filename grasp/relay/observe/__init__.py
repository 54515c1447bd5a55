"""Watching the relay: :mod:`.metrics` (Prometheus ``/metrics``), :mod:`.status` (the
``/status`` and ``/status.json`` board) and :mod:`.status_page` (the HTML page, whose script
and style ship as package data in ``static/``).

Nothing is imported here, so importing one module does not pull in the others.
"""
