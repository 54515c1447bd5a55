"""Parsers of option values: each turns the text of a flag or env var into the Config value or
raises ``argparse.ArgumentTypeError`` with a human sentence (the CLI prints it on one line).

Units are converted here, once: a ``--*-ms`` option's value is stored in seconds.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["GIB", "KIB", "LOG_LEVELS", "MIB"]

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def integer(text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise argparse.ArgumentTypeError(f"{value} is out of range (must be {bound})")
    return value


def int_at_least(low: int) -> Callable[[str], int]:
    return lambda text: integer(text, low)


def milliseconds(text: str) -> float:
    """A whole number of milliseconds, as seconds (the one conversion of the unit)."""
    return integer(text, 0) / 1000


def positive_milliseconds(text: str) -> float:
    return integer(text, 1) / 1000


def as_milliseconds(seconds: float) -> str:
    return str(round(seconds * 1000))


def port(text: str) -> int:
    return integer(text, 0, 65535)


def seconds(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):  # also rejects NaN
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def positive_seconds(text: str) -> float:
    value = seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


SIZE = re.compile(r"(\d+)\s*(|k|kb|kib|m|mb|mib|g|gb|gib)", re.IGNORECASE)
SIZE_UNITS = {"": 1, "k": KIB, "m": MIB, "g": GIB}


def byte_size(text: str) -> int:
    """``1073741824``, ``512KiB``, ``64m``, ``1GiB`` (units are binary, case-insensitive)."""
    match = SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 1048576, 512KiB, 1GiB)")
    value = int(match.group(1)) * SIZE_UNITS[match.group(2)[:1].lower()]
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1 byte")
    return value


def host(text: str) -> str:
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or any(c.isspace() or c in "/@" for c in host):
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or IP address")
    return host


def authority(text: str) -> str:
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


def relay_url(text: str) -> str:
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not a ws:// or wss:// relay URL")
    return url


def relay_urls(text: str) -> tuple[str, ...]:
    return tuple(relay_url(item) for item in text.split(",") if item.strip())


def boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a boolean (use 1/0, true/false, yes/no, on/off)"
    )


def log_level(text: str) -> str:
    value = text.strip().upper()
    if value not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level ({', '.join(LOG_LEVELS)})")
    return value


URL_SCHEMES = ("http", "https")


def url_scheme(text: str) -> str:
    """``http`` or ``https``: how clients reach this relay (``ws``/``wss`` follow)."""
    value = text.strip().lower()
    if value not in URL_SCHEMES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL scheme (http or https)")
    return value


def path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return Path(text)


def text(value: str) -> str:
    """A free text (a name, a description, a URL): anything but empty."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value.strip()


def repo_rule(value: str) -> str:
    """``npub``, ``npub/identifier`` or ``identifier`` (S15.5), checked and kept as written."""
    from grasp.admission.curation import RepoRule

    try:
        return str(RepoRule.parse(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def repo_rules(value: str) -> tuple[str, ...]:
    return tuple(repo_rule(item) for item in value.split(",") if item.strip())


def pubkey(value: str) -> str:
    """An npub or 64-hex public key, kept as lowercase hex."""
    from grasp.admission.curation import parse_pubkey

    try:
        return parse_pubkey(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def pubkeys(value: str) -> tuple[str, ...]:
    return tuple(pubkey(item) for item in value.split(",") if item.strip())


POSTGRES_SCHEMES = ("postgresql", "postgres")


def database(value: str) -> str:
    """``postgresql://user:password@host[:port]/dbname`` (a cluster, S19.1) or a path to a
    SQLite file. A malformed URL is refused here, with the password left out of the message,
    so a typo is a usage error (exit 2), not a failed connection."""
    text = value.strip()
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    if "://" not in text:
        return text  # a SQLite file
    parts = urlsplit(text)
    shown = _without_password(text)
    if parts.scheme.lower() not in POSTGRES_SCHEMES:
        raise argparse.ArgumentTypeError(
            f"{shown!r}: unsupported database URL scheme {parts.scheme!r} "
            "(use postgresql://user:password@host:port/dbname or a SQLite file path)"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown!r} has a bad port") from None
    if not parts.hostname:
        raise argparse.ArgumentTypeError(f"{shown!r} names no host")
    if not parts.path.strip("/"):
        raise argparse.ArgumentTypeError(f"{shown!r} names no database (…/dbname)")
    return parts.scheme + text[len(parts.scheme) :]  # urlsplit lower-cased the scheme


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{netloc}").geturl()
