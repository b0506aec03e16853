"""TensorBoard scalars (and text samples) of a run (`MODEL_DIR/train`, `MODEL_DIR/validation`), exact across resumes.

A run killed after logging steps past its last checkpoint logs those steps again when it
resumes. So that every reader (TensorBoard's Python and Rust loaders alike) shows each step once,
a resumed writer first removes, from the event files already there, the events of the steps it
will redo: each affected file is rewritten without them into a temporary file that replaces it
(a kill in between leaves the old file or the new one, never half of one). A temporary file a
killed rewrite left is removed by the next writer (only the run's one writer rewrites), and is
never taken for an event file.
"""

from __future__ import annotations

import glob
import os
from typing import Mapping, Optional


TMP_SUFFIX = ".tmp"  # an event file being rewritten: `<event file>.tmp`


def event_files(logdir: str) -> list[str]:
    """The event files in `logdir`, without the temporaries of a rewrite."""
    return sorted(path for path in glob.glob(os.path.join(logdir, "*tfevents*"))
                  if not path.endswith(TMP_SUFFIX))


def remove_rewrite_leftovers(logdir: str) -> list[str]:
    """Removes what a rewrite killed midway left (`<event file>.tmp`); returns their paths."""
    found = sorted(glob.glob(os.path.join(logdir, f"*tfevents*{TMP_SUFFIX}")))
    for path in found:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return found


def drop_steps_from(logdir: str, step: int) -> int:
    """Removes the events of steps >= `step` from the event files in `logdir`; returns how many."""
    from prompt_tuning.data.tensorflow_quiet import tf  # pylint: disable=import-outside-toplevel
    from tensorflow.core.util import event_pb2  # pylint: disable=import-outside-toplevel

    remove_rewrite_leftovers(logdir)
    dropped = 0
    for path in event_files(logdir):
        records = [bytes(r.numpy()) for r in tf.data.TFRecordDataset(path)]
        events = [event_pb2.Event.FromString(r) for r in records]
        kept = [r for r, e in zip(records, events) if e.step < step or e.HasField("file_version")]
        if len(kept) == len(records):
            continue
        tmp = path + TMP_SUFFIX
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in kept:
                writer.write(record)
        os.replace(tmp, path)
        dropped += len(records) - len(kept)
    return dropped


class ScalarWriter:
    """Scalars into TensorBoard event files under `logdir` (on the first host only).

    Args:
      logdir: the event file directory; None writes nothing (other hosts).
      redo_from: the first step this run will log again (a resumed run's start + 1, or 0 when
        a run restarts before its first checkpoint): events already logged for it and later
        steps are removed first.
    """

    def __init__(self, logdir: Optional[str], redo_from: int = 0):
        self._writer = None
        if logdir is None:
            return
        from prompt_tuning.data.tensorflow_quiet import tf  # pylint: disable=import-outside-toplevel

        if os.path.isdir(logdir):
            drop_steps_from(logdir, redo_from)
        self._tf = tf
        self._writer = tf.summary.create_file_writer(logdir)

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        if self._writer is None:
            return
        with self._writer.as_default():
            for name, value in scalars.items():
                self._tf.summary.scalar(name, float(value), step=step)

    def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
        """Text summaries (the `_examples` tasks' samples), shown in TensorBoard's Text tab."""
        if self._writer is None:
            return
        with self._writer.as_default():
            for name, text in texts.items():
                self._tf.summary.text(name, text, step=step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
