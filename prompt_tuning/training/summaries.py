"""TensorBoard scalars of a run (`MODEL_DIR/train`, `MODEL_DIR/validation`), exact across resumes.

A run killed after logging steps past its last checkpoint logs those steps again when it
resumes. So that TensorBoard shows each step once, a resumed writer first records a
`SessionLog.START` event at the first step it will redo: TensorBoard then drops what older files
logged from that step on ("orphaned" data, its own mechanism for restarted jobs).
"""

from __future__ import annotations

import time
from typing import Mapping, Optional


class ScalarWriter:
    """Scalars into TensorBoard event files under `logdir` (on the first host only).

    Args:
      logdir: the event file directory; None writes nothing (other hosts).
      resumed_from: the step the run resumed from; events of later steps in older files are
        marked orphaned. None (or 0): a fresh run.
    """

    def __init__(self, logdir: Optional[str], resumed_from: Optional[int] = None):
        self._writer = None
        if logdir is None:
            return
        from prompt_tuning.data.tensorflow_quiet import tf  # pylint: disable=import-outside-toplevel

        self._tf = tf
        self._writer = tf.summary.create_file_writer(logdir)
        if resumed_from:
            self._restart_at(resumed_from + 1)

    def _restart_at(self, step: int) -> None:
        from tensorflow.core.util import event_pb2  # pylint: disable=import-outside-toplevel
        # pylint: disable-next=import-outside-toplevel
        from tensorflow.python.ops import summary_ops_v2

        event = event_pb2.Event(wall_time=time.time(), step=step,
                                session_log=event_pb2.SessionLog(
                                    status=event_pb2.SessionLog.START))
        with self._writer.as_default():
            summary_ops_v2.import_event(self._tf.constant(event.SerializeToString()))
        self._writer.flush()

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        if self._writer is None:
            return
        with self._writer.as_default():
            for name, value in scalars.items():
                self._tf.summary.scalar(name, float(value), step=step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
