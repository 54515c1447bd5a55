"""Relay configuration: one frozen :class:`Config`, filled from CLI flags, then env vars, then
defaults (S12).

Every option is declared once in :data:`OPTIONS` (field, flag, env var, parser, help); the argparse
parser, the env lookup and ``--help`` are all generated from that table, so an option cannot exist
as a flag but not as an env var, or be documented with the wrong default. Precedence is the usual
one for daemons: an explicit flag beats the environment, which beats the built-in default.

Bad values raise :class:`ConfigError` with a one-line message naming the flag or env var; the CLI
turns that into exit status 2 (a usage error), never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from actors.config import SyncConfig
from grasp.git import FetchLimits
from grasp.purgatory.store import DEFAULT_EXPIRY_SECS
from grasp.relay.transport.connection import WebSocketLimits
from grasp.relay.transport.session import SessionLimits

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


_SYNC, _FETCH = SyncConfig(), FetchLimits()
_WEBSOCKET, _SESSION = WebSocketLimits(), SessionLimits()


class ConfigError(ValueError):
    """An unusable option value; ``str(exc)`` is one line fit for ``grasp-relay: error: ...``."""


@dataclass(frozen=True)
class Config:
    """Every setting of the relay process, in seconds and bytes whatever unit its flag takes
    (milliseconds are converted once, when parsed). Defaults are the S12 defaults, taken from
    the layer each setting configures so that every SPEC number has one home."""

    # purgatory sync (the seed's five, S4)
    sync_loop_interval_secs: float = _SYNC.tick_interval
    sync_domain_concurrent: int = _SYNC.max_concurrent
    sync_domain_rate_limit: int = _SYNC.max_per_minute
    sync_default_delay_secs: float = _SYNC.user_delay
    sync_immediate_delay_secs: float = _SYNC.synced_delay
    # listening and identity
    host: str = "127.0.0.1"
    port: int = 7777
    #: Public authority (``host[:port]``) used in clone/relay URLs; None means ``<host>:<port>``.
    domain: str | None = None
    data_dir: Path = Path("grasp-data")
    # sync sources and fetching (S3.4, S7.2, S10.7)
    sync_sources: tuple[str, ...] = ()
    allow_private_fetch: bool = False
    fetch_timeout_secs: float = _FETCH.deadline_secs
    fetch_read_timeout_secs: float = _FETCH.read_timeout_secs
    fetch_max_bytes: int = _FETCH.max_bytes
    purgatory_expiry_secs: float = DEFAULT_EXPIRY_SECS
    trace: Path | None = None
    # benchmark knobs: shorter rate window (politeness runs), tick-only scheduling (baseline)
    sync_rate_window_secs: float = _SYNC.rate_window
    sync_precise_wakeups: bool = _SYNC.precise_wakeups
    sync_backoff_scale: float = _SYNC.backoff_scale
    # NIP-01 limits (S10.1, bold there, so configurable)
    max_message_bytes: int = _WEBSOCKET.max_message_bytes
    max_subscriptions: int = _SESSION.max_subscriptions
    max_limit: int = _SESSION.max_limit
    log_level: str = "INFO"

    @property
    def public_domain(self) -> str:
        """The authority other parties use to reach us: ``--domain`` or ``<host>:<port>``."""
        if self.domain is not None:
            return self.domain
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def sync_enabled(self) -> bool:
        """Whether other relays are configured as sync sources (GRASP-02)."""
        return bool(self.sync_sources)

    def with_bound_port(self, port: int) -> Config:
        """The config as seen after binding: ``--port 0`` replaced by the real port.

        The default domain follows the real port, so clone URLs checked by the write policy
        name an address that actually answers.
        """
        return dataclasses.replace(self, port=port)


# --- value parsers (each raises argparse.ArgumentTypeError with a human sentence) ---------------


def _integer(text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise argparse.ArgumentTypeError(f"{value} is out of range (must be {bound})")
    return value


def _int_at_least(low: int) -> Callable[[str], int]:
    return lambda text: _integer(text, low)


def _milliseconds(text: str) -> float:
    """A whole number of milliseconds, as seconds (the one conversion of the unit)."""
    return _integer(text, 0) / 1000


def _positive_milliseconds(text: str) -> float:
    return _integer(text, 1) / 1000


def _as_milliseconds(seconds: float) -> str:
    return str(round(seconds * 1000))


def _port(text: str) -> int:
    return _integer(text, 0, 65535)


def _seconds(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):  # also rejects NaN
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


_SIZE = re.compile(r"(\d+)\s*(|k|kb|kib|m|mb|mib|g|gb|gib)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": KIB, "m": MIB, "g": GIB}


def _byte_size(text: str) -> int:
    """``1073741824``, ``512KiB``, ``64m``, ``1GiB`` (units are binary, case-insensitive)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 1048576, 512KiB, 1GiB)")
    value = int(match.group(1)) * _SIZE_UNITS[match.group(2)[:1].lower()]
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1 byte")
    return value


def _host(text: str) -> str:
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or any(c.isspace() or c in "/@" for c in host):
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or IP address")
    return host


def _authority(text: str) -> str:
    """``host[:port]`` as it appears in URLs: no scheme, no path, no userinfo."""
    value = text.strip().lower()
    parts = urlsplit(f"//{value}")
    try:
        port_ok = parts.port is None or 0 < parts.port
    except ValueError:
        port_ok = False
    if not value or not parts.hostname or parts.netloc != value or "@" in value or not port_ok:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an authority like example.com or host:8080"
        )
    return value


def _relay_url(text: str) -> str:
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not a ws:// or wss:// relay URL")
    return url


def _relay_urls(text: str) -> tuple[str, ...]:
    return tuple(_relay_url(item) for item in text.split(",") if item.strip())


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a boolean (use 1/0, true/false, yes/no, on/off)"
    )


def _log_level(text: str) -> str:
    value = text.strip().upper()
    if value not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level ({', '.join(LOG_LEVELS)})")
    return value


def _path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return Path(text)


# --- the option table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One configurable setting: a Config field, its CLI flag and env var, and how to parse them."""

    field: str
    flag: str
    env: str
    parse: Callable[[str], Any]
    help: str
    #: "value" (``--x V``), "switch" (``--x`` / ``--no-x``) or "append" (repeatable ``--x V``).
    kind: str = "value"
    metavar: str | None = None
    #: How the default is shown in --help when ``repr``-ish formatting would mislead.
    default_text: str | None = None
    #: Parses the env var when it differs from the flag (comma lists for "append").
    env_parse: Callable[[str], Any] | None = None
    #: Shows the Config value in the flag's unit (milliseconds flags hold seconds).
    show: Callable[[Any], str] | None = None


OPTIONS: tuple[Option, ...] = (
    Option(
        "sync_loop_interval_secs",
        "--sync-loop-interval-ms",
        "GRASP_SYNC_LOOP_INTERVAL_MS",
        _positive_milliseconds,
        "period of the scheduler's safety-net Tick (S4.4)",
        metavar="MS",
        show=_as_milliseconds,
    ),
    Option(
        "sync_domain_concurrent",
        "--sync-domain-concurrent",
        "GRASP_SYNC_DOMAIN_CONCURRENT",
        _int_at_least(1),
        "max fetches in flight per remote domain (S6.1)",
        metavar="N",
    ),
    Option(
        "sync_domain_rate_limit",
        "--sync-domain-rate-limit",
        "GRASP_SYNC_DOMAIN_RATE_LIMIT",
        _int_at_least(1),
        "max fetches started per remote domain in any 60 s window (S6.1)",
        metavar="N",
    ),
    Option(
        "sync_default_delay_secs",
        "--sync-default-delay-secs",
        "GRASP_SYNC_DEFAULT_DELAY_SECS",
        _seconds,
        "sync delay after a user-submitted event; a push usually follows (S4.2)",
        metavar="SECS",
    ),
    Option(
        "sync_immediate_delay_secs",
        "--sync-immediate-delay-ms",
        "GRASP_SYNC_IMMEDIATE_DELAY_MS",
        _milliseconds,
        "sync delay after an event from a sync source or a restart (S4.2)",
        metavar="MS",
        show=_as_milliseconds,
    ),
    Option("host", "--host", "GRASP_HOST", _host, "address to listen on", metavar="HOST"),
    Option(
        "port",
        "--port",
        "GRASP_PORT",
        _port,
        "port to listen on; 0 picks a free port",
        metavar="PORT",
    ),
    Option(
        "domain",
        "--domain",
        "GRASP_DOMAIN",
        _authority,
        "public authority (host[:port]) of this relay in clone and relay URLs (S3.2, S10.4)",
        metavar="AUTHORITY",
        default_text="<host>:<port>",
    ),
    Option(
        "data_dir",
        "--data-dir",
        "GRASP_DATA_DIR",
        _path,
        "directory for events.sqlite3, git repositories and purgatory state",
        metavar="DIR",
        default_text="./grasp-data",
    ),
    Option(
        "sync_sources",
        "--sync-source",
        "GRASP_SYNC_SOURCES",
        _relay_url,
        "relay to copy NIP-34 events from (repeatable; env: comma-separated list) (S10.7)",
        kind="append",
        metavar="WS_URL",
        default_text="none",
        env_parse=_relay_urls,
    ),
    Option(
        "allow_private_fetch",
        "--allow-private-fetch",
        "GRASP_ALLOW_PRIVATE_FETCH",
        _boolean,
        "allow fetching git data from loopback/private addresses (S3.4; tests need it)",
        kind="switch",
        default_text="off",
    ),
    Option(
        "fetch_timeout_secs",
        "--fetch-timeout-secs",
        "GRASP_FETCH_TIMEOUT_SECS",
        _positive_seconds,
        "total deadline of one git fetch (S7.2)",
        metavar="SECS",
    ),
    Option(
        "fetch_read_timeout_secs",
        "--fetch-read-timeout-secs",
        "GRASP_FETCH_READ_TIMEOUT_SECS",
        _positive_seconds,
        "per-read timeout of a git fetch (S7.2)",
        metavar="SECS",
    ),
    Option(
        "fetch_max_bytes",
        "--fetch-max-bytes",
        "GRASP_FETCH_MAX_BYTES",
        _byte_size,
        "pack size cap of one git fetch, e.g. 1073741824 or 1GiB (S7.2)",
        metavar="BYTES",
        default_text="1GiB",
    ),
    Option(
        "purgatory_expiry_secs",
        "--purgatory-expiry-secs",
        "GRASP_PURGATORY_EXPIRY_SECS",
        _positive_seconds,
        "how long a held event waits for its git data (S1.4)",
        metavar="SECS",
    ),
    Option(
        "trace",
        "--trace",
        "GRASP_TRACE",
        _path,
        "write one JSON line per delivered actor message to FILE (S13.3)",
        metavar="FILE",
        default_text="off",
    ),
    Option(
        "sync_rate_window_secs",
        "--sync-rate-window-secs",
        "GRASP_SYNC_RATE_WINDOW_SECS",
        _positive_seconds,
        "length of the per-domain rate window (S6.1); shorten only for benchmarks",
        metavar="SECS",
    ),
    Option(
        "sync_precise_wakeups",
        "--sync-precise-wakeups",
        "GRASP_SYNC_PRECISE_WAKEUPS",
        _boolean,
        "wake the scheduler at each entry's next attempt (S4.4); --no-sync-precise-wakeups "
        "leaves only the periodic tick (a benchmark baseline)",
        kind="switch",
        default_text="on",
    ),
    Option(
        "sync_backoff_scale",
        "--sync-backoff-scale",
        "GRASP_SYNC_BACKOFF_SCALE",
        _positive_seconds,
        "multiplies the 20/40/80/120 s retry backoff (S4.1); below 1 only for tests",
        metavar="FACTOR",
    ),
    Option(
        "max_message_bytes",
        "--max-message-bytes",
        "GRASP_MAX_MESSAGE_BYTES",
        _byte_size,
        "largest websocket message accepted; bigger ones are closed with 1009 (S10.1)",
        metavar="BYTES",
        default_text="512KiB",
    ),
    Option(
        "max_subscriptions",
        "--max-subscriptions",
        "GRASP_MAX_SUBSCRIPTIONS",
        _int_at_least(1),
        "open REQ subscriptions allowed per connection (S10.1)",
        metavar="N",
    ),
    Option(
        "max_limit",
        "--max-limit",
        "GRASP_MAX_LIMIT",
        _int_at_least(1),
        "cap on a filter's 'limit' and on stored events per filter (S10.1)",
        metavar="N",
    ),
    Option(
        "log_level",
        "--log-level",
        "GRASP_LOG_LEVEL",
        _log_level,
        f"logging threshold ({', '.join(LOG_LEVELS)})",
        metavar="LEVEL",
    ),
)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line."""

    def error(self, message: str) -> Any:
        raise ConfigError(message)


def _default_text(option: Option) -> str:
    if option.default_text is not None:
        return option.default_text
    value = next(f.default for f in dataclasses.fields(Config) if f.name == option.field)
    if option.show is not None:
        return option.show(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def build_parser(prog: str = "grasp-relay") -> argparse.ArgumentParser:
    """The CLI parser; every option's help names its env var and default."""
    parser = _Parser(
        prog=prog,
        description="A GRASP relay: a Nostr relay (NIP-01, NIP-11, NIP-34) "
        "that hosts git repositories.",
        epilog="Each option can also be set through the environment variable named in its help; "
        "a flag given on the command line wins over the environment.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for option in OPTIONS:
        text = f"{option.help} [env: {option.env}; default: {_default_text(option)}]"
        kwargs: dict[str, Any] = {"dest": option.field, "default": argparse.SUPPRESS, "help": text}
        if option.kind == "switch":
            parser.add_argument(option.flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif option.kind == "append":
            parser.add_argument(
                option.flag, action="append", type=option.parse, metavar=option.metavar, **kwargs
            )
        else:
            parser.add_argument(option.flag, type=option.parse, metavar=option.metavar, **kwargs)
    return parser


def _from_environ(option: Option, environ: Mapping[str, str]) -> Any:
    raw = environ[option.env]
    parse = option.env_parse or option.parse
    try:
        return parse(raw)
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"environment variable {option.env}={raw!r}: {exc}") from None


def parse_config(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Config:
    """Build the Config from ``argv`` (without the program name) and ``environ``.

    Raises ConfigError for any bad flag or env value; ``--help`` raises SystemExit(0) as argparse
    does.
    """
    namespace = build_parser().parse_args(list(argv) if argv is not None else [])
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if hasattr(namespace, option.field):
            value = getattr(namespace, option.field)
            values[option.field] = tuple(value) if option.kind == "append" else value
        elif option.env in environ:
            values[option.field] = _from_environ(option, environ)
    return Config(**values)


def configure_logging(level: str) -> None:
    """Log to stderr with the logger name and greenlet/thread name in every line (S13.2)."""
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s",
    )
