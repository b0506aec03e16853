"""Input pipelines from seqio tasks: deterministic order per seed, resumable by position.

Shared by training (shuffled, repeated) and inference (one ordered pass). Batches are seqio
`EncDecFeatureConverter` outputs, `[batch, length]` int32 each (FEATURES), plus, when a batch
mixes prompts, `prompt_ids` `[batch]` (which prompt of a `PromptTable` each example uses).

Prompt tuning never packs examples: the prompt is prepended per example, so packed sequences
would share (and mis-position) one prompt. `DatasetConfig(pack=True)` is refused.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping, Optional

import numpy as np

from prompt_tuning import errors
from prompt_tuning.data.features import FEATURES, PROMPT_IDS


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """Which examples feed a step, like T5X's `utils.DatasetConfig`.

    Attributes:
      mixture_or_task_name: a registered seqio task or mixture.
      task_feature_lengths: e.g. {"inputs": 512, "targets": 8}; longer examples are trimmed.
      split: the split to read.
      batch_size: the global batch size (all hosts together).
      shuffle: shuffle (with `seed`) and repeat forever, for training.
      seed: the data order depends only on this (and the task), so runs are reproducible.
      use_cached: read a seqio cache prepared offline.
      pack: must be False (see the module docstring).
      prompt_per_task: each example carries `prompt_ids`, its task's index in the mixture
        (MULTI_TASK: one prompt per task, `data.multitask`).
    """

    mixture_or_task_name: str
    task_feature_lengths: Mapping[str, int]
    split: str = "train"
    batch_size: int = 32
    shuffle: bool = True
    seed: Optional[int] = 0
    use_cached: bool = False
    pack: bool = False
    prompt_per_task: bool = False

    def __post_init__(self):
        if not isinstance(self.mixture_or_task_name, str) or not self.mixture_or_task_name:
            raise errors.UsageError(f"MIXTURE_OR_TASK_NAME must be a task or mixture name, got "
                                    f"{self.mixture_or_task_name!r}.")
        if not isinstance(self.prompt_per_task, bool):
            raise errors.UsageError(f"MULTI_TASK must be True or False, got "
                                    f"{self.prompt_per_task!r}.")
        if self.pack:
            raise errors.UsageError("Prompt tuning does not pack examples: the prompt is "
                                    "prepended to each example. Set pack=False.")
        if not _positive_int(self.batch_size):
            raise errors.UsageError(
                f"batch_size must be a positive integer, got {self.batch_size!r}.")
        check_feature_lengths(self.task_feature_lengths)
        if not isinstance(self.split, str) or not self.split:
            raise errors.UsageError(f"the split must be a name such as 'train' or 'validation', "
                                    f"got {self.split!r}.")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_feature_lengths(lengths) -> None:
    """TASK_FEATURE_LENGTHS must be `{'inputs': N, 'targets': M}` with positive integers."""
    if not isinstance(lengths, Mapping) or set(lengths) != {"inputs", "targets"} or not all(
            _positive_int(v) for v in lengths.values()):
        raise errors.UsageError("TASK_FEATURE_LENGTHS must be {'inputs': N, 'targets': M} with "
                                f"positive integers, got {lengths!r}.")


def get_dataset(config: DatasetConfig, shard_id: int = 0, num_shards: int = 1,
                num_epochs: Optional[int] = None):
    """The batched `tf.data.Dataset` of seqio shard `shard_id` of `num_shards`, in batches of
    `batch_size // num_shards` (default: the whole data in global batches)."""
    from prompt_tuning.data.tensorflow_quiet import seqio  # pylint: disable=import-outside-toplevel

    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    if config.batch_size % num_shards:
        raise errors.UsageError(f"batch size {config.batch_size} is not divisible by the "
                                f"{num_shards} hosts.")
    tasks.get_task_or_mixture(config.mixture_or_task_name)  # a clear error for unknown names
    if config.prompt_per_task:
        from prompt_tuning.data import multitask  # pylint: disable=import-outside-toplevel
        return multitask.get_dataset(config, shard_id, num_shards, num_epochs)
    return seqio.get_dataset(
        config.mixture_or_task_name,
        task_feature_lengths=dict(config.task_feature_lengths),
        feature_converter=seqio.EncDecFeatureConverter(pack=False),
        dataset_split=config.split,
        use_cached=config.use_cached,
        shuffle=config.shuffle,
        num_epochs=num_epochs if not config.shuffle else None,
        shard_info=seqio.ShardInfo(index=shard_id, num_shards=num_shards),
        verbose=False,
        seed=config.seed,
        batch_size=config.batch_size // num_shards,
    )


def batches(config: DatasetConfig, start_step: int = 0, shard_id: int = 0,
            num_shards: int = 1) -> Iterator[dict[str, np.ndarray]]:
    """This host's rows of each global training batch, starting after `start_step` batches.

    Every host reads the same global stream (`batch_size` examples a step) and keeps its rows,
    block `shard_id` of `num_shards` (the rows its devices hold, `partitioning.data_layout`). So
    which examples make up a step does not depend on how many hosts there are: a run may resume
    on another topology and continue exactly, and many hosts compute what one would. (T5X reads a
    different shard of the data per host instead, which ties the data order to the host count;
    reading the whole batch costs each host the tokenization of `batch_size` examples a step.)

    The order is a pure function of the config, so skipping `start_step` batches of a fresh
    pipeline lands exactly where an interrupted run stopped.

    Once the first batch is read, one `note:` line says how many of the examples read so far
    (the tf.data pipeline reads ahead) TASK_FEATURE_LENGTHS cut short, if any (`truncation`).
    """
    from prompt_tuning.data import truncation  # pylint: disable=import-outside-toplevel

    if config.batch_size % num_shards:
        raise errors.UsageError(f"batch size {config.batch_size} is not divisible by the "
                                f"{num_shards} hosts.")
    rows = config.batch_size // num_shards
    mine = slice(shard_id * rows, (shard_id + 1) * rows)
    with truncation.counting(truncation.Truncation()) as cut:
        dataset = get_dataset(config).skip(start_step)
    for index, batch in enumerate(dataset.as_numpy_iterator()):
        if index == 0:
            cut.note(config.task_feature_lengths, "training")
        yield {k: np.asarray(batch[k][mine], np.int32)
               for k in (*FEATURES, PROMPT_IDS) if k in batch}
