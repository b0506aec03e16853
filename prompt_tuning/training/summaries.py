"""TensorBoard scalars (and text samples) of a run (`MODEL_DIR/train`, `MODEL_DIR/validation`), exact across resumes.

The event files are written here, through `filesystem`, so they go wherever MODEL_DIR is (a
local disk or `gs://`) by the same client as everything else, without TensorFlow. An event file
is TensorFlow's record format (length, masked CRC-32C of the length, data, masked CRC-32C of the
data) of `Event` protos, as TensorBoard reads them; scalars are written as TF2's
`tf.summary.scalar` writes them (a float tensor under the "scalars" plugin), text as
`tf.summary.text` does.

An object in Cloud Storage cannot be appended to: a writer keeps its file's records and uploads
the whole file at each flush (each upload atomic); on a local disk it appends and fsyncs.

A run killed after logging steps past its last checkpoint logs those steps again when it
resumes. So that every reader (TensorBoard's Python and Rust loaders alike) shows each step once,
a resumed writer first removes, from the event files already there, the events of the steps it
will redo: each affected file is rewritten without them (atomically: a kill in between leaves
the old file or the new one, never half of one). Leftover temporaries of a killed rewrite are not
event files (`.tmp` names) and are removed by the next writer.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from typing import Mapping, Optional

from prompt_tuning import atomic_write, filesystem

_EVENT_MARK = ".tfevents."


def _masked_crc(data: bytes) -> int:
    import google_crc32c  # pylint: disable=import-outside-toplevel
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def encode_record(data: bytes) -> bytes:
    """One record of TensorFlow's record format."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", _masked_crc(length)) + data
            + struct.pack("<I", _masked_crc(data)))


def decode_records(blob: bytes) -> list[bytes]:
    """The records of a record file; a torn last record (a kill mid-append) is dropped."""
    records, offset = [], 0
    while offset + 12 <= len(blob):
        (length,) = struct.unpack_from("<Q", blob, offset)
        end = offset + 12 + length + 4
        if end > len(blob):
            break
        data = blob[offset + 12:offset + 12 + length]
        if struct.unpack_from("<I", blob, end - 4)[0] != _masked_crc(data):
            break
        records.append(data)
        offset = end
    return records


def _protos():
    # TensorBoard's own copies of the protos: no TensorFlow import.
    from tensorboard.compat.proto import event_pb2, summary_pb2  # pylint: disable=import-outside-toplevel
    return event_pb2, summary_pb2


def event_files(logdir: str) -> list[str]:
    if not filesystem.isdir(logdir):
        return []
    return [filesystem.join(logdir, name) for name in filesystem.listdir(logdir)
            if _EVENT_MARK in name and ".tmp" not in name]


def drop_steps_from(logdir: str, step: int) -> int:
    """Removes the events of steps >= `step` from the event files in `logdir`; returns how many."""
    event_pb2, _ = _protos()
    dropped = 0
    for path in event_files(logdir):
        records = decode_records(filesystem.read_bytes(path))
        kept = [r for r in records
                if (e := event_pb2.Event.FromString(r)).step < step or e.HasField("file_version")]
        if len(kept) == len(records):
            continue
        atomic_write.write_files_atomically({path: b"".join(encode_record(r) for r in kept)})
        dropped += len(records) - len(kept)
    return dropped


def _remove_leftovers(logdir: str) -> None:
    """Temporaries of a rewrite that a kill interrupted."""
    if filesystem.isdir(logdir):
        for name in filesystem.listdir(logdir):
            if _EVENT_MARK in name and ".tmp" in name:
                filesystem.remove(filesystem.join(logdir, name))


class ScalarWriter:
    """Scalars into TensorBoard event files under `logdir` (on the first host only).

    Args:
      logdir: the event file directory; None writes nothing (other hosts).
      redo_from: the first step this run will log again (a resumed run's start + 1, or 0 when
        a run restarts before its first checkpoint): events already logged for it and later
        steps are removed first.
    """

    def __init__(self, logdir: Optional[str], redo_from: int = 0):
        self._path: Optional[str] = None
        self._pending: list[bytes] = []
        self._written = b""  # the whole file so far (object stores rewrite it at each flush)
        if logdir is None:
            return
        _remove_leftovers(logdir)
        drop_steps_from(logdir, redo_from)
        filesystem.makedirs(logdir)
        now = time.time()
        # TensorBoard's naming: events.out.tfevents.<seconds>.<host>[.<suffix>]; the time in
        # microseconds keeps two writers of one second apart.
        self._path = filesystem.join(
            logdir, f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{int(now * 1e6)}.v2")
        event_pb2, _ = _protos()
        self._add(event_pb2.Event(wall_time=now, step=0, file_version="brain.Event:2"))
        self.flush()

    def _add(self, event) -> None:
        self._pending.append(encode_record(event.SerializeToString()))

    def _summary(self, step: int, tag: str, plugin: str, tensor) -> None:
        event_pb2, summary_pb2 = _protos()
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))
        value = summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=tensor)
        self._add(event_pb2.Event(wall_time=time.time(), step=step,
                                  summary=summary_pb2.Summary(value=[value])))

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        if self._path is None:
            return
        from tensorboard.compat.proto import tensor_pb2, types_pb2  # pylint: disable=import-outside-toplevel
        for name, value in scalars.items():
            self._summary(step, name, "scalars",
                          tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT,
                                                 float_val=[float(value)]))
        self.flush()  # what is logged is on disk: a killed run's restart finds every step

    def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
        """Text summaries (the `_examples` tasks' samples), shown in TensorBoard's Text tab."""
        if self._path is None:
            return
        from tensorboard.compat.proto import tensor_pb2, types_pb2  # pylint: disable=import-outside-toplevel
        for name, text in texts.items():
            self._summary(step, name, "text",
                          tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING,
                                                 string_val=[text.encode("utf-8")]))
        self.flush()

    def flush(self) -> None:
        if self._path is None or not self._pending:
            return
        data, self._pending = b"".join(self._pending), []
        if filesystem.is_remote(self._path):
            self._written += data
            filesystem.write_bytes(self._path, self._written)
            return
        with open(self._path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        self.flush()
        self._path = None
