"""TensorBoard event files across resumes: each step once, and no leftover of a killed rewrite."""

import os

from prompt_tuning.training import summaries


def _steps(path: str) -> list[int]:
    from prompt_tuning.data.tensorflow_quiet import tf  # pylint: disable=import-outside-toplevel
    from tensorflow.core.util import event_pb2  # pylint: disable=import-outside-toplevel

    events = [event_pb2.Event.FromString(bytes(r.numpy())) for r in tf.data.TFRecordDataset(path)]
    return [e.step for e in events if e.HasField("summary")]


def test_a_rewrite_killed_midway_is_cleaned_up_by_the_next_writer(tmp_path):
    logdir = str(tmp_path / "train")
    writer = summaries.ScalarWriter(logdir)
    for step in range(1, 7):
        writer.write(step, {"loss": float(step)})
    writer.close()
    (events,) = os.listdir(logdir)
    path = os.path.join(logdir, events)
    # What a resume killed while rewriting this file leaves: its temporary, cut mid-record.
    with open(path, "rb") as f:
        data = f.read()
    with open(path + ".tmp", "wb") as f:
        f.write(data[:len(data) // 2 + 3])

    writer = summaries.ScalarWriter(logdir, redo_from=4)  # the next resume
    writer.write(4, {"loss": 40.0})
    writer.close()
    names = sorted(os.listdir(logdir))
    assert len(names) == 2 and not [n for n in names if n.endswith(".tmp")], names
    assert _steps(path) == [1, 2, 3]
    (new,) = [os.path.join(logdir, n) for n in names if n != events]
    assert _steps(new) == [4]
