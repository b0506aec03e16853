"""TensorFlow, imported once and quietly: seqio and TFDS read data with it, nothing else does.

TensorFlow's C++ start-up lines (oneDNN notes, "Could not find cuda drivers", on some machines
"failed call to cuInit") go to file descriptor 2 before `TF_CPP_MIN_LOG_LEVEL` is read, so they
are silenced at the descriptor while TensorFlow loads and initialises its devices. TensorFlow is
also kept off the GPUs (as T5X does): it only feeds data, and JAX owns the accelerators.
`PT_DEBUG=1` leaves stderr alone.

Data modules import `tf` from here before they import seqio or TFDS.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def _silenced_stderr() -> Iterator[None]:
    if os.environ.get("PT_DEBUG", "") not in ("", "0"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _import_tensorflow():
    with _silenced_stderr():
        import tensorflow  # pylint: disable=import-outside-toplevel
        try:
            tensorflow.config.set_visible_devices([], "GPU")
        except RuntimeError:  # devices were initialised already (someone imported tf first)
            pass
    return tensorflow


tf = _import_tensorflow()
