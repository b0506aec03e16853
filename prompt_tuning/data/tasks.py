"""Every registered task and mixture, and the look-ups the rest of the package uses.

Importing this module registers, once, the built-in tasks, SuperGLUE and GLUE (each family
registers itself through one explicit `register()` call listed here, not by import side effects
scattered over modules).
"""

from __future__ import annotations

import difflib
from typing import Any, Optional, Sequence

from prompt_tuning import errors
from prompt_tuning.data import builtin, glue, superglue
from prompt_tuning.data.tensorflow_quiet import seqio

_FAMILIES = (builtin, superglue, glue)


def _register_all() -> None:
    for family in _FAMILIES:
        family.register()


def get_task_or_mixture(name: str, given_as: str = "MIXTURE_OR_TASK_NAME") -> Any:
    """The seqio Task or Mixture called `name`, or a clear error naming close matches (and
    `given_as`, where the name came from)."""
    try:
        return seqio.get_mixture_or_task(name)
    except ValueError:
        pass
    known = sorted(seqio.TaskRegistry.names()) + sorted(seqio.MixtureRegistry.names())
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise errors.UsageError(f"Unknown task or mixture {name!r} ({given_as}).{hint} "
                            "`python -m prompt_tuning.show_tasks` lists them.")


def check_split(name: str, split: str) -> None:
    """Every sub-task of `name` must have the split `split` (SPLIT)."""
    for task in seqio.get_subtasks(get_task_or_mixture(name)):
        try:
            splits = list(task.splits)
        except Exception:  # pylint: disable=broad-except  # only the data knows: check_prepared
            continue
        if split not in splits:
            close = difflib.get_close_matches(str(split), splits, n=1, cutoff=0.3)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise errors.UsageError(f"Task {task.name!r} has no split {split!r} (SPLIT); it has "
                                    f"{splits}.{hint}")


def get_label_classes(name: str) -> Optional[Sequence[str]]:
    """The label strings of a classification task (for rank classification), else None."""
    task = get_task_or_mixture(name)
    return getattr(getattr(task, "postprocessor", None), "label_classes", None)


def check_prepared(name: str, split: str, use_cached: bool = False) -> None:
    """The TFDS data behind every sub-task of `name` must be prepared for `split` (or, with
    `use_cached`, the task's seqio cache must exist): seqio would otherwise start a download (or
    fail deep inside TFDS) in the middle of a run."""
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    for task in seqio.get_subtasks(get_task_or_mixture(name)):
        if use_cached:
            _check_cached(task, split)
            continue
        if not isinstance(task.source, seqio.TfdsDataSource):
            continue
        dataset, data_dir = task.source.tfds_dataset.get_split_params(split)
        try:
            builder = tfds.builder(dataset, data_dir=data_dir)
            prepared = builder.is_prepared()
            where = builder.data_dir
        except Exception as e:  # pylint: disable=broad-except  # unknown version, bad dir, ...
            raise errors.DataError(f"TFDS dataset {dataset} (task {task.name}) cannot be "
                                   f"opened: {str(e).strip().splitlines()[0]}") from e
        if not prepared:
            raise errors.DataError(f"TFDS dataset {dataset} (task {task.name}) is not prepared "
                                   f"in {where}: {_how_to_prepare(task.name, dataset)}")


def _how_to_prepare(task_name: str, dataset: str) -> str:
    if dataset.startswith("glue/") and dataset.endswith(":1.0.0"):
        # Today's TFDS builds GLUE 2.0.0 only; the v200 tasks read it (same text, same labels).
        return (f"today's TFDS no longer builds GLUE 1.0.0; use "
                f"{task_name.replace('_v002', '_v200')!r}, whose data `python -m "
                "prompt_tuning.prepare_data` prepares.")
    return (f"prepare it (`python -m prompt_tuning.prepare_data --tasks={task_name} "
            "--tfds_data_dir=DIR`) or point --tfds_data_dir at where it is.")


def _check_cached(task: Any, split: str) -> None:
    if task.cache_dir is None:
        raise errors.DataError(
            f"Task {task.name!r} has no seqio cache (USE_CACHED_TASKS=True) in "
            f"{list(seqio.utils.get_global_cache_dirs())}: build one with seqio's cache_tasks_main "
            "and name its directory with --seqio_additional_cache_dirs, or set "
            "USE_CACHED_TASKS=False.")
    try:
        task.assert_cached()
        task.get_cached_stats(split)
    except (AssertionError, ValueError) as e:
        raise errors.DataError(f"The seqio cache of task {task.name!r} ({task.cache_dir}) cannot "
                               f"be read for split {split!r}: "
                               f"{str(e).strip().splitlines()[0]}") from e


def check_vocabulary(name: str, vocabulary: Any) -> None:
    """The task must tokenize with the model's vocabulary."""
    from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel

    for task in seqio.get_subtasks(get_task_or_mixture(name)):
        for feature_name, feature in task.output_features.items():
            if not vocab.same_vocabulary(feature.vocabulary, vocabulary):
                raise errors.UserError(
                    f"Task {task.name!r} tokenizes {feature_name!r} with another vocabulary "
                    f"({getattr(feature.vocabulary, 'sentencepiece_model_file', '?')}) than the "
                    "model's (VOCABULARY_PATH).")


_register_all()
