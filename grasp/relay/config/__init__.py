"""Relay configuration (S12): one frozen :class:`Config`, filled from CLI flags, then env vars,
then defaults.

:mod:`.settings` holds the Config, :mod:`.options` the one table of options, :mod:`.values` the
parsers of option values, :mod:`.parsing` the argparse/env plumbing. Precedence is the usual one
for daemons: an explicit flag beats the environment, which beats the built-in default.
"""

from .options import OPTIONS, Option
from .parsing import build_parser, configure_logging, default_text, parse_config
from .settings import Config, ConfigError
from .values import GIB, KIB, LOG_LEVELS, MIB

__all__ = [
    "GIB",
    "KIB",
    "LOG_LEVELS",
    "MIB",
    "OPTIONS",
    "Config",
    "ConfigError",
    "Option",
    "build_parser",
    "configure_logging",
    "default_text",
    "parse_config",
]
