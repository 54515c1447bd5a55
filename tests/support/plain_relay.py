"""A plain NIP-01 relay for tests: the transport without GRASP's write policy.

Tests use it as an independent-enough peer (a sync source that stores everything) and to test
the transport on its own. The GRASP relay assembles the same building blocks in
``grasp.relay.app``; nothing in the product needs a plain relay, so it lives here.
"""

from __future__ import annotations

from collections.abc import Mapping

from grasp.admission.intake import StoreWritePolicy
from grasp.relay.config import Config
from grasp.relay.transport.connection import WebSocketLimits
from grasp.relay.transport.http import MountKey, WSGIApp
from grasp.relay.transport.hub import SubscriptionHub
from grasp.relay.transport.server import (
    PolicyFactory,
    Relay,
    StartupError,
    build_app,
    listen,
    open_store,
    prepare_data_dir,
    session_limits,
)
from grasp.relay.transport.session import SessionContext


def open_relay(
    config: Config,
    *,
    policy: PolicyFactory | None = None,
    mounts: Mapping[MountKey, WSGIApp] | None = None,
    limits: WebSocketLimits | None = None,
) -> Relay:
    """Data dir -> store -> socket -> app. Raises StartupError; nothing is left open on failure."""
    data_dir = prepare_data_dir(config.data_dir)
    store = open_store(data_dir)
    try:
        server = listen(config)
    except StartupError:
        store.close()
        raise
    bound = config.with_bound_port(server.server_port)
    hub = SubscriptionHub()
    accept_event = (policy or StoreWritePolicy)(store, hub.publish)
    context = SessionContext(
        accept_event=accept_event,
        query=store.query,
        hub=hub,
        limits=session_limits(bound),
        query_json=store.query_json,
    )
    app = build_app(bound, context, mounts=mounts, limits=limits)
    server.application = app
    return Relay(config=bound, store=store, hub=hub, app=app, server=server)
