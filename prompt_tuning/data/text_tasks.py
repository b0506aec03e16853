"""Text-to-text tasks read from TFDS (SuperGLUE, GLUE), described as data, and their registration.

A `TextTask` says where a task's examples come from and how they become text; `register_tasks`
turns each into its variants (`VARIANTS`: plain, `taskless_`, `task_index_`; each also with the
`_examples` suffix of `SUFFIXES`) with T5's chain [before_text] -> text -> tokenize -> cache ->
EOS after trim.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Sequence

from prompt_tuning.data import examples, truncation, variants
from prompt_tuning.data.tensorflow_quiet import seqio

Preprocessor = Callable


@dataclasses.dataclass(frozen=True)
class TextTask:
    """A seqio task read from TFDS and formatted as text to text.

    Attributes:
      name: the registered name (`super_glue_rte_v102`); variants prefix it.
      tfds_name: `name/config:version`.
      splits: the TFDS splits the task reads.
      text_preprocessor: dataset of TFDS examples -> dataset of {"inputs", "targets", ...} strings.
      postprocess_fn: decoded text -> what `metric_fns` compare (None: the text itself).
      metric_fns: `fn(targets, predictions) -> {name: value}`; empty for test-only tasks.
      index: the task's id in the `task_index_` variant (`<extra_id_{index}>` is prepended).
      before_text: preprocessors run before `text_preprocessor` (AX-b's rekey).
    """

    name: str
    tfds_name: str
    splits: Sequence[str]
    text_preprocessor: Preprocessor
    postprocess_fn: Optional[Callable]
    metric_fns: Sequence[Callable]
    index: int
    before_text: Sequence[Preprocessor] = ()


def task_indices(configs: Sequence[str], aliases: Mapping[str, str]) -> dict[str, int]:
    """Task ids for the `task_index_` variants, as Lester et al.: the configs that are not aliases,
    sorted by name, are numbered 0, 1, ...; an alias (AX-b -> RTE) takes its target's id."""
    own = sorted(set(configs) - set(aliases))
    index = {config: i for i, config in enumerate(own)}
    return {**index, **{alias: index[target] for alias, target in aliases.items()}}


def text_to_tokens(task: TextTask) -> list:
    """The T5 preprocessor chain: [before_text] -> text -> tokenize -> cache -> EOS after trim."""
    return [*task.before_text, task.text_preprocessor, seqio.preprocessors.tokenize,
            seqio.CacheDatasetPlaceholder(), truncation.append_eos_after_trim]


def _taskless(task: TextTask, steps: list) -> list:
    return variants.taskless(steps, task.text_preprocessor)


def _task_index(task: TextTask, steps: list) -> list:
    # Lester et al.'s task_index tasks drop the task name too: the sentinel replaces it.
    return variants.task_index(_taskless(task, steps), task.index)


# Variant name prefix -> how the variant changes the task's preprocessors.
VARIANTS: Mapping[str, Callable[[TextTask, list], list]] = {
    "": lambda task, steps: steps,
    "taskless_": _taskless,
    "task_index_": _task_index,
}


def output_features(vocabulary: Any) -> dict[str, seqio.Feature]:
    """inputs and targets, both tokenized with `vocabulary` and ending in EOS."""
    return {"inputs": seqio.Feature(vocabulary, add_eos=True),
            "targets": seqio.Feature(vocabulary, add_eos=True)}


# Variant name suffix -> (postprocessor, metrics) of the variant: `_examples` predictions carry
# their example's text, and the metrics add text samples (`examples.py`).
SUFFIXES: Mapping[str, Callable[[TextTask], tuple]] = {
    "": lambda task: (task.postprocess_fn, list(task.metric_fns)),
    examples.SUFFIX: lambda task: examples.with_examples(task.postprocess_fn, task.metric_fns),
}


def _add_task(name: str, task: TextTask, preprocessors: list, features: Mapping,
              postprocess_fn: Optional[Callable], metric_fns: Sequence[Callable]) -> None:
    # Replacing an existing entry keeps register() idempotent (and lets a new vocabulary win).
    seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(
        name, source=seqio.TfdsDataSource(task.tfds_name, splits=list(task.splits)),
        preprocessors=preprocessors, output_features=features,
        postprocess_fn=postprocess_fn, metric_fns=list(metric_fns))


def register_tasks(tasks: Sequence[TextTask], features: Mapping) -> list[str]:
    """Registers every task in every variant (`VARIANTS` x `SUFFIXES`); returns the names."""
    names = []
    for task in tasks:
        for prefix, make_variant in VARIANTS.items():
            for suffix, make_scoring in SUFFIXES.items():
                name = prefix + task.name + suffix
                _add_task(name, task, make_variant(task, text_to_tokens(task)), features,
                          *make_scoring(task))
                names.append(name)
    return names


def add_mixture(name: str, rates: Mapping[str, float]) -> None:
    """A mixture of registered tasks (task name -> rate); replaces an earlier one of that name."""
    seqio.MixtureRegistry.remove(name)
    seqio.MixtureRegistry.add(name, list(rates.items()))


def register_family(tasks: Sequence[TextTask], vocabulary: Any,
                    mixtures: Mapping[str, Mapping[str, float]]) -> None:
    """Registers `tasks` in every variant and, per variant prefix and suffix, each mixture
    (name -> {task name: rate}), e.g. `taskless_super_glue_v102_proportional_examples`."""
    register_tasks(tasks, output_features(vocabulary))
    for prefix in VARIANTS:
        for suffix in SUFFIXES:
            for name, rates in mixtures.items():
                add_mixture(prefix + name + suffix,
                            {prefix + task + suffix: rate for task, rate in rates.items()})
