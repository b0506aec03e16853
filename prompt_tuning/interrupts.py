"""Ctrl-C (SIGINT) honoured from a command's first instant: exit 130 and one line.

Python's own handler raises KeyboardInterrupt wherever the main thread happens to be, and some
places swallow it: JAX runs a callback on every garbage collection (`gc.callbacks`), and an
exception raised inside one is printed as "Exception ignored" and dropped. During the imports
of a command's first seconds collections are frequent, so a Ctrl-C there was lost and the run
went on. Hence a handler of our own, installed by a command before its heavy imports:

* Before the command's `main` starts (`started()`), nothing has been written: the handler
  prints `error: interrupted` and leaves at once with status 130.
* Afterwards it raises KeyboardInterrupt, so `finally` blocks close what they hold and
  `cli.runner` prints the one line and returns 130. Raised inside a garbage collector's
  callback it would be dropped, so there it is delivered again a moment later; so is one that
  Python drops anywhere else it cannot raise (a weakref callback, a `__del__`, which it reports
  through `sys.unraisablehook`).
* Inside `deferred()` (a checkpoint being committed) it is held until the block ends, so a
  write is whole or not started: a run interrupted there resumes from it.

Only commands install it (`install`); importing the package changes no signal handling.
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import os
import signal
import sys
import threading
from types import FrameType
from typing import Iterator, Optional

EXIT_CODE = 130
LINE = "error: interrupted"
RETRY_S = 0.02

_installed = False
_started = False
_deferring = 0
_pending = False


def install() -> None:
    """Makes SIGINT ours (main thread only; a no-op elsewhere or when installed already)."""
    global _installed  # pylint: disable=global-statement
    if _installed:
        return
    try:
        signal.signal(signal.SIGINT, _handle)
    except ValueError:  # not the main thread: leave Python's handling alone
        return
    previous = sys.unraisablehook

    def redeliver_dropped(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            _deliver_later(signal.SIGINT)
            return
        previous(unraisable)

    sys.unraisablehook = redeliver_dropped
    _installed = True


def _deliver_later(signum: int) -> None:
    """SIGINT again in a moment, from another thread, once the main thread left the place
    where it could not raise (raise_signal or interrupt_main from there would run the handler
    again at once, still inside it)."""
    timer = threading.Timer(RETRY_S, _thread.interrupt_main, (signum,))
    timer.daemon = True
    timer.start()


def started() -> None:
    """The command's own code runs from now on: SIGINT raises KeyboardInterrupt."""
    global _started  # pylint: disable=global-statement
    _started = True


def _in_gc_callback(frame: Optional[FrameType]) -> bool:
    """Whether `frame` or a caller of it is one of `gc.callbacks` (where exceptions are lost)."""
    codes = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


def _handle(signum: int, frame: Optional[FrameType]) -> None:
    global _pending  # pylint: disable=global-statement
    if not _started:
        os.write(2, (LINE + "\n").encode())
        os._exit(EXIT_CODE)  # pylint: disable=protected-access
    if _deferring:
        _pending = True
        return
    if _in_gc_callback(frame):
        _deliver_later(signum)
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A block that SIGINT does not cut short; an interrupt received inside is raised after."""
    global _deferring, _pending  # pylint: disable=global-statement
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring and _pending:
        _pending = False
        raise KeyboardInterrupt

