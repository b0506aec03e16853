"""Multi-task prompt tuning's data: a mixture whose every example says which task it is from.

Row k of the run's prompt table is the prompt of task k, the k-th task of the mixture that has
the training split (the mixture's own order). The mixed stream is built as seqio builds a mixture's: each task's
dataset (`Task.get_dataset`, through `EncDecFeatureConverter`), tagged with its `prompt_ids`,
sampled by the mixture's rates with the run's seed, in batches as `pipeline.get_dataset` makes
them (`prompt_ids`: `[batch]` int32).
"""

from __future__ import annotations

from typing import Any, Optional

from prompt_tuning import errors
from prompt_tuning.data.features import PROMPT_IDS
from prompt_tuning.data.tensorflow_quiet import seqio, tf


def prompt_tasks(name: str, split: str = "train") -> list[str]:
    """The tasks of mixture `name` that have `split`, in order: one prompt each."""
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    found = [t.name for t in seqio.get_subtasks(tasks.get_task_or_mixture(name))
             if split in t.splits]
    if len(found) < 2:
        raise errors.UsageError(f"MULTI_TASK trains one prompt per task of a mixture; {name!r} "
                                f"has {len(found)} task(s) with a {split!r} split.")
    return found


def get_dataset(config: Any, shard_id: int = 0, num_shards: int = 1,
                num_epochs: Optional[int] = None) -> tf.data.Dataset:
    """`pipeline.get_dataset` for a `DatasetConfig` with `prompt_per_task`."""
    names = prompt_tasks(config.mixture_or_task_name, config.split)
    mixture = seqio.get_mixture_or_task(config.mixture_or_task_name)
    lengths = dict(config.task_feature_lengths)
    shard = seqio.ShardInfo(index=shard_id, num_shards=num_shards)
    # Unpacked conversion is one example at a time, so converting each task's stream before
    # mixing gives what converting the mix would; the task's index is added after it.
    converter = seqio.EncDecFeatureConverter(pack=False)
    datasets, rates = [], []
    for index, name in enumerate(names):
        task = seqio.get_mixture_or_task(name)
        dataset = task.get_dataset(lengths, split=config.split, use_cached=config.use_cached,
                                   shuffle=config.shuffle, seed=config.seed, shard_info=shard,
                                   num_epochs=None if config.shuffle else num_epochs)
        datasets.append(converter(dataset, lengths).map(
            lambda example, index=index: {**example, PROMPT_IDS: tf.constant(index, tf.int32)},
            num_parallel_calls=tf.data.experimental.AUTOTUNE))
        rates.append(float(mixture.get_rate(task)) if hasattr(mixture, "get_rate") else 1.0)
    if not any(rates):
        raise errors.UsageError(f"every task of {config.mixture_or_task_name!r} has rate 0.")
    mixed = tf.data.Dataset.sample_from_datasets(datasets, rates,
                                                 seed=config.seed if config.shuffle else 42)
    return mixed.batch(config.batch_size // num_shards, drop_remainder=config.shuffle)
