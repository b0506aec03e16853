"""One error path for every command: a single `error:` line and an exit code.

* 0: done (`--help` too);
* 2: a usage error (`errors.UsageError`: a flag, a gin value, an option out of range);
* 1: anything else that stopped the command (`errors.UserError`, a file system error, ...);
* 130: interrupted (Ctrl-C), from the command's first instant (`interrupts`).
No traceback is printed unless `--verbose` is on the command line or `PT_DEBUG=1` is set; then
the traceback comes first and the `error:` line is still the last line.

Background threads of orbax/TensorStore may outlive a failed read and report, through
`sys.excepthook`, that their event loop is gone; those reports are dropped (unless verbose), and
a failed command leaves at once after its error line instead of waiting for such threads.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import Callable, NoReturn, Optional, Sequence

from prompt_tuning import errors, interrupts, stderr_guard
from prompt_tuning.cli import compilation_cache

Main = Callable[[Sequence[str]], None]
DEBUG_ENV = "PT_DEBUG"


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 600 else text[:597] + "..."


def _verbose(argv: Sequence[str]) -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0") or "--verbose" in argv[1:]


def _message(error: BaseException) -> tuple[str, int]:
    """(the error line's text, the exit code) for an exception that ended a command."""
    if isinstance(error, errors.UserError):
        return _one_line(error), error.exit_code
    if isinstance(error, OSError) and error.filename is not None:
        reason = error.strerror or _one_line(error)
        return f"{error.filename}: {reason}", 1
    if isinstance(error, (ValueError, OSError, RuntimeError)):
        return _one_line(error), 1
    # A failure we did not foresee: still one line, with what it was and how to see more.
    return (f"unexpected {type(error).__name__}: {_one_line(error)} (set {DEBUG_ENV}=1 for the "
            "traceback, and please report it)"), 1


def _drop(*_args) -> None:
    """An excepthook for reports from library threads that outlive a failure."""


def call(main: Main, argv: Optional[Sequence[str]] = None) -> int:
    """Runs `main(argv)` (argv[0] is the program) and returns its exit code."""
    argv = list(sys.argv if argv is None else argv)
    if not _verbose(argv):
        # Third-party warnings (seqio's "sequence lengths longer than necessary", orbax's
        # notes) are not the user's business; --verbose shows them.
        from absl import logging  # pylint: disable=import-outside-toplevel
        logging.set_verbosity(logging.ERROR)
    compilation_cache.enable()
    try:
        interrupts.started()
        main(argv)
    except SystemExit as e:  # --help, or a command that chose its own code
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        stderr_guard.print_error(interrupts.LINE)
        return interrupts.EXIT_CODE
    except Exception as e:  # pylint: disable=broad-except
        message, code = _message(e)
        if _verbose(argv):
            traceback.print_exc()
        stderr_guard.print_error(f"error: {message}")
        return code
    return 0


def run(main: Main) -> NoReturn:
    """`sys.exit(call(main, sys.argv))`: the last line of every command module."""
    interrupts.install()
    if not _verbose(sys.argv):
        sys.excepthook = _drop
        threading.excepthook = _drop
        stderr_guard.enable()
    code = call(main, sys.argv)
    if code != 0:
        # Leave now: threads of a failed checkpoint read would only print noise while the
        # interpreter waits for them. Everything of ours is closed and written already. An
        # interrupted command too: Python would turn 130 into death by SIGINT when the
        # interrupt landed in code a library ran through PyRun_String.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # pylint: disable=protected-access
    sys.exit(code)
