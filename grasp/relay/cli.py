"""``grasp-relay``: parse -> build -> serve until SIGTERM/SIGINT -> shut down cleanly.

gevent's monkey patching comes first, before anything imports ``socket`` or ``threading`` for
real use (python-ecosystem.md §1, §3); this module is the process entry point, so it is here.

Exit status: 0 after a signal-initiated shutdown, 2 for a bad option or env value (usage error),
1 when the relay cannot start (unusable data directory or store, busy port). Errors are one line
on stderr. Once listening, exactly one line ``grasp-relay listening on http://HOST:PORT`` is
printed on stderr, whatever the log level, so scripts and tests can learn the port of ``--port 0``
without racing for it.
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

from grasp.relay.app import open_grasp_relay  # noqa: E402
from grasp.relay.config import ConfigError, configure_logging, parse_config  # noqa: E402
from grasp.relay.transport.server import StartupError  # noqa: E402

PROG = "grasp-relay"


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point (``grasp.relay.cli:main``)."""
    try:
        config = parse_config(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    configure_logging(config.log_level)
    try:
        relay = open_grasp_relay(config)
    except StartupError as exc:
        return _fail(str(exc), 1)
    stop = gevent.event.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop.set)
    gevent.signal_handler(signal.SIGUSR1, relay.log_debug_state)
    relay.start()
    print(f"{PROG} listening on {relay.http_url}", file=sys.stderr, flush=True)
    stop.wait()
    relay.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
