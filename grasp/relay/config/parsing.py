"""From argv and the environment to a :class:`Config`: flags beat env vars beat defaults.

Bad values raise :class:`ConfigError` with a one-line message naming the flag or env var; the CLI
turns that into exit status 2 (a usage error), never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from .options import OPTIONS, Option
from .settings import Config, ConfigError

__all__ = ["build_parser", "configure_logging", "default_text", "parse_config"]


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line."""

    def error(self, message: str) -> Any:
        raise ConfigError(message)


def default_text(option: Option) -> str:
    """The default of ``option`` as --help and docs/configuration.rst show it."""
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
        epilog="Each option can also be set through the environment variable named in its help;\n"
        "a flag given on the command line wins over the environment. Rule numbers such as\n"
        "(S4.2) refer to docs/spec.rst; docs/configuration.rst has every option.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for option in OPTIONS:
        text = f"{option.help} [env: {option.env}; default: {default_text(option)}]"
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
