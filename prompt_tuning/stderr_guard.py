"""Keeping native libraries' noise off a command's stderr, at the file-descriptor level.

Some noise never passes through Python's `sys.stderr`: TensorFlow's C++ start-up lines, and the
tracebacks TensorStore's threads print when a checkpoint read fails and orbax has closed their
event loop already (dozens to hundreds of lines, a different number each run). Both are written
to file descriptor 2 directly, so they are silenced there:

* `silenced()` points fd 2 at /dev/null for a block and brings it back after.
* `silenced_if_failing()` does the same around a call whose failure makes threads print; on
  failure fd 2 stays silenced (the command is ending) and `print_error` still reaches the user.

A command enables this (`enable()`, from `cli.run`); libraries used from Python, tests and
`--verbose`/`PT_DEBUG=1` runs leave stderr alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator, Optional

_enabled = False
_real_stderr: Optional[int] = None  # a duplicate of the terminal's fd 2 while it is silenced


def enable() -> None:
    global _enabled  # pylint: disable=global-statement
    _enabled = True


def _silence() -> int:
    """Points fd 2 at /dev/null; returns a duplicate of what it was."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    return saved


def _restore(saved: int) -> None:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


@contextlib.contextmanager
def silenced(always: bool = False) -> Iterator[None]:
    """fd 2 silenced for the block (only when enabled, unless `always`)."""
    if not (_enabled or always) or _real_stderr is not None or _debugging():
        yield
        return
    saved = _silence()
    try:
        yield
    finally:
        _restore(saved)


@contextlib.contextmanager
def silenced_if_failing() -> Iterator[None]:
    """fd 2 silenced for the block; if the block raises, it stays silenced for good."""
    global _real_stderr  # pylint: disable=global-statement
    if not _enabled or _real_stderr is not None or _debugging():
        yield
        return
    saved = _silence()
    try:
        yield
    except BaseException:
        _real_stderr = saved
        raise
    _restore(saved)


def print_error(line: str) -> None:
    """Writes `line` to the user's stderr, even while fd 2 is silenced for good."""
    sys.stdout.flush()
    if _real_stderr is None:
        print(line, file=sys.stderr, flush=True)
    else:
        os.write(_real_stderr, (line + "\n").encode())


def _debugging() -> bool:
    return os.environ.get("PT_DEBUG", "") not in ("", "0")
