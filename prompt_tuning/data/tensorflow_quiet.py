"""TensorFlow (and seqio, built on it), imported once and quietly: data is read with them.

TensorFlow's C++ start-up lines (oneDNN notes, "Could not find cuda drivers", on some machines
"failed call to cuInit") go to file descriptor 2 before `TF_CPP_MIN_LOG_LEVEL` is read, so they
are silenced at the descriptor while TensorFlow loads and initialises its devices
(`stderr_guard`). TensorFlow is also kept off the GPUs (as T5X does): it only feeds data, and JAX
owns the accelerators. `PT_DEBUG=1` leaves stderr alone.

Data modules import `tf` (or `seqio`) from here before anything else of TensorFlow's.
"""

from __future__ import annotations

from prompt_tuning import stderr_guard


def _import_tensorflow():
    with stderr_guard.silenced(always=True):
        import tensorflow  # pylint: disable=import-outside-toplevel
        try:
            tensorflow.config.set_visible_devices([], "GPU")
        except RuntimeError:  # devices were initialised already (someone imported tf first)
            pass
    return tensorflow


tf = _import_tensorflow()
import seqio  # noqa: E402  pylint: disable=wrong-import-position  (after TensorFlow, on purpose)
