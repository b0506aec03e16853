"""How many examples TASK_FEATURE_LENGTHS cut short, counted where the tasks trim them.

Our tasks end with `append_eos_after_trim` (T5's: each feature is cut to its length less one,
then EOS is appended). The one here does the same and, while a `Truncation` counter is active
(`counting`, around building a dataset), also counts in the tf.data pipeline the examples read
and those whose inputs or targets it cut: a scalar add per example, no second pass over the
data. The counter is captured when the dataset is built, so each pipeline (training, the
dev-set evaluation, inference) counts its own examples. `note` says it in one line.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Mapping, Optional

from prompt_tuning import notes
from prompt_tuning.data.tensorflow_quiet import seqio, tf

FEATURES = ("inputs", "targets")


class Truncation:
    """Counters of one pipeline: examples read, and those with each feature cut."""

    def __init__(self) -> None:
        # int64 on the CPU: tf.data runs there, and adds to them as it reads.
        with tf.device("/CPU:0"):
            self._counts = {name: tf.Variable(0, dtype=tf.int64, trainable=False)
                            for name in ("examples", *FEATURES)}

    def counts(self) -> dict[str, int]:
        """{"examples": read so far, "inputs": cut, "targets": cut}."""
        return {name: int(variable.numpy()) for name, variable in self._counts.items()}

    def count(self, example: Mapping[str, tf.Tensor], output_features: Mapping[str, object],
              sequence_length: Mapping[str, int]) -> Mapping[str, tf.Tensor]:
        """Adds `example` to the counts (as it is before the cut); returns it unchanged."""
        self._counts["examples"].assign_add(1)
        for name in FEATURES:
            if name in example and sequence_length.get(name) is not None:
                feature = output_features.get(name)
                room = sequence_length[name] - int(bool(getattr(feature, "add_eos", False)))
                cut = tf.shape(example[name], out_type=tf.int64)[0] > room
                self._counts[name].assign_add(tf.cast(cut, tf.int64))
        return example

    def note(self, lengths: Mapping[str, int], what: str) -> None:
        """One `note:` line when some example was cut, e.g. `TASK_FEATURE_LENGTHS cut the inputs
        of 12 and the targets of 0 of the 64 training examples read (inputs 32, targets 4
        tokens); raise them to keep whole examples.` Nothing when none was."""
        counts = self.counts()
        if not any(counts[name] for name in FEATURES):
            return
        sizes = ", ".join(f"{name} {lengths[name]}" for name in FEATURES if name in lengths)
        notes.note(f"TASK_FEATURE_LENGTHS cut the inputs of {counts['inputs']} and the targets "
                   f"of {counts['targets']} of the {counts['examples']} {what} examples read "
                   f"({sizes} tokens); raise them to keep whole examples.")


_active: list[Truncation] = []


@contextlib.contextmanager
def counting(counter: Truncation) -> Iterator[Truncation]:
    """Datasets built within count into `counter` (as they are read, later)."""
    _active.append(counter)
    try:
        yield counter
    finally:
        _active.remove(counter)


def append_eos_after_trim(dataset: tf.data.Dataset, output_features: Mapping[str, object],
                          sequence_length: Optional[Mapping[str, int]] = None
                          ) -> tf.data.Dataset:
    """seqio's `append_eos_after_trim`, counting into the active `Truncation` what it cuts."""
    if _active and sequence_length is not None:
        counter = _active[-1]
        dataset = dataset.map(lambda example: counter.count(example, output_features,
                                                            sequence_length))
    return seqio.preprocessors.append_eos_after_trim(dataset, output_features=output_features,
                                                     sequence_length=sequence_length)
