"""Parsing a command's flags: private absl flags, `--help`, `--verbose`, one-line mistakes.

Each command gets its own `flags.FlagValues` rather than absl's global FLAGS, so commands never
clash over flag names (two define `--output`) and importing one command module from another
defines nothing.
"""

from __future__ import annotations

import difflib
import sys
from typing import Callable, Sequence

from absl import flags

from prompt_tuning import errors

HELP_ARGS = ("--help", "-h", "-?", "--helpshort", "--helpfull")


def _usage(doc: str, values: flags.FlagValues) -> str:
    return f"{(doc or '').strip()}\n\nflags:\n{values.get_help()}\n"


def _unknown_flag_hint(message: str, values: flags.FlagValues) -> str:
    """absl's 'Unknown command line flag' plus a close match among this command's flags."""
    name = message.split("'")[1] if message.count("'") >= 2 else ""
    close = difflib.get_close_matches(name, list(values), n=1, cutoff=0.6)
    return f" Did you mean --{close[0]}?" if close else ""


def parse_flags(argv: Sequence[str], define: Callable[[flags.FlagValues], None],
                doc: str) -> flags.FlagValues:
    """The parsed flags of one command.

    Args:
      argv: the command line, argv[0] being the program.
      define: defines the command's flags on the `FlagValues` it is given.
      doc: the command's usage text (its module docstring), printed by `--help`.
    Returns:
      The parsed values. `--help` prints the usage and exits 0 (SystemExit); a bad flag, a
      bad value or a stray argument raises `errors.UsageError`.
    """
    values = flags.FlagValues()
    define(values)
    flags.DEFINE_bool("verbose", False, "print the traceback of a failure (also PT_DEBUG=1).",
                      flag_values=values)
    if any(arg in HELP_ARGS for arg in argv[1:]):
        sys.stdout.write(_usage(doc, values))
        raise SystemExit(0)
    try:
        rest = values(list(argv))
    except flags.Error as e:  # absl's errors are not ValueErrors
        message = str(e).strip().splitlines()[0].split(". Did you mean")[0].rstrip(".")
        hint = _unknown_flag_hint(message, values) if "Unknown command line flag" in message else ""
        raise errors.UsageError(f"{message}.{hint} (--help lists the flags)") from e
    if len(rest) > 1:
        raise errors.UsageError(f"unexpected argument {rest[1]!r}; every option is a "
                                "--flag=value (--help lists them).")
    return values
