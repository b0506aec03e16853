"""Input pipelines from seqio tasks: deterministic order per seed, resumable by position.

Prompt tuning never packs examples: the prompt is prepended per example, so packed sequences
would share (and mis-position) one prompt. `DatasetConfig(pack=True)` is refused.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping, Optional

import numpy as np

FEATURES = ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens",
            "decoder_loss_weights")


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
    """

    mixture_or_task_name: str
    task_feature_lengths: Mapping[str, int]
    split: str = "train"
    batch_size: int = 32
    shuffle: bool = True
    seed: Optional[int] = 0
    use_cached: bool = False
    pack: bool = False

    def __post_init__(self):
        if self.pack:
            raise ValueError("Prompt tuning does not pack examples: the prompt is prepended to each "
                             "example. Set pack=False.")
        if not isinstance(self.batch_size, int) or self.batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}.")
        lengths = dict(self.task_feature_lengths or {})
        if set(lengths) != {"inputs", "targets"} or not all(
                isinstance(v, int) and v > 0 for v in lengths.values()):
            raise ValueError("TASK_FEATURE_LENGTHS must be {'inputs': N, 'targets': M} with positive "
                             f"integers, got {self.task_feature_lengths!r}.")


def get_dataset(config: DatasetConfig, shard_id: int = 0, num_shards: int = 1,
                num_epochs: Optional[int] = None):
    """The batched `tf.data.Dataset` of this host's share (`batch_size // num_shards`)."""
    import seqio  # pylint: disable=import-outside-toplevel

    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    if config.batch_size % num_shards:
        raise ValueError(f"batch size {config.batch_size} is not divisible by the {num_shards} hosts.")
    tasks.get_task_or_mixture(config.mixture_or_task_name)  # a clear error for unknown names
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
    """Numpy batches of training data, starting after the first `start_step` batches.

    The order is a pure function of the config, so skipping `start_step` batches of a fresh
    pipeline lands exactly where an interrupted run stopped.
    """
    dataset = get_dataset(config, shard_id, num_shards).skip(start_step)
    for batch in dataset.as_numpy_iterator():
        yield {k: np.asarray(batch[k], np.int32) for k in FEATURES}
