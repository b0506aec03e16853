"""T5X's gin names on the command line, so a T5X user's (or the reference's) flags run unchanged.

A `--gin.X=...` binding that names a T5X configurable is rewritten to ours, per command:

  T5X binding                                       train                     eval          infer
  utils.DatasetConfig.P, train/utils.DatasetConfig.P  DatasetConfig.P          EvalConfig.P  DatasetConfig.P
  infer_eval/utils.DatasetConfig.P                  EvalConfig.P (the dev set)  -             -
  partitioning.(ModelBased)PjitPartitioner.P        PartitioningConfig.P (all commands)
  partitioning.standard_logical_axis_rules.P        PartitioningConfig.P (all commands)
  utils.RestoreCheckpointConfig.path                ModelConfig.initial_checkpoint_path (all)
  utils.SaveCheckpointConfig.{period,keep}          CheckpointConfig.*        -             -
  trainer.Trainer.num_microbatches                  TrainConfig.num_microbatches
  utils.create_learning_rate_scheduler.base_learning_rate / .warmup_steps   AdafactorConfig.*
  seqio.Evaluator.num_examples                      EvalConfig.num_examples

Anything else of T5X's known configurables (train_eval datasets, checkpoint dtypes, loggers, ...)
is refused with one line that names it: silently ignoring a setting a user relies on is worse
than stopping. Names that are not T5X's pass through to gin unchanged (gin reports unknown ones).
T5X macros that have no counterpart (`EVAL_STEPS`, ...) are refused by the unused-macro check,
with the reason from `UNSUPPORTED_MACROS`.
"""

from __future__ import annotations

import importlib
import re
from typing import Mapping, Optional

from prompt_tuning import errors

# Our configurables, as the shipped gin files import (and so register) them.
_DATASET = "pipeline.DatasetConfig"
_EVAL = "eval_config.EvalConfig"
_PARTITIONING = "partitioning.PartitioningConfig"
_MODEL = "frozen_model.ModelConfig"
_CHECKPOINT = "train_config.CheckpointConfig"
_TRAIN = "train_config.TrainConfig"
_OPTIMIZER = "optim.AdafactorConfig"

_DATASET_FIELDS = ("mixture_or_task_name", "task_feature_lengths", "split", "batch_size",
                   "shuffle", "seed", "use_cached", "pack")
_EVAL_FIELDS = ("mixture_or_task_name", "split", "batch_size", "use_cached")
_PARTITIONING_FIELDS = ("num_partitions", "model_parallel_submesh", "mesh_shape",
                        "activation_partitioning_dims", "parameter_partitioning_dims",
                        "additional_rules", "logical_axis_rules")


def _same(*names: str) -> dict[str, str]:
    return {name: name for name in names}


def _all_commands(target: str, params: Mapping[str, str]) -> dict:
    return {command: (target, params) for command in ("train", "eval", "infer")}


# (T5X scope, T5X configurable) -> {command: (our configurable, {T5X param: our param})}.
_RENAMES: dict[tuple[str, str], dict[str, tuple[str, Mapping[str, str]]]] = {
    ("", "utils.DatasetConfig"): {
        "train": (_DATASET, _same(*_DATASET_FIELDS)),
        "infer": (_DATASET, _same(*_DATASET_FIELDS)),
        "eval": (_EVAL, _same(*_EVAL_FIELDS)),
    },
    ("train", "utils.DatasetConfig"): {"train": (_DATASET, _same(*_DATASET_FIELDS))},
    ("infer_eval", "utils.DatasetConfig"): {"train": (_EVAL, _same(*_EVAL_FIELDS))},
    # Our PartitioningConfig is these classes (aliases), so all its settings go under them.
    ("", "partitioning.PjitPartitioner"): _all_commands(_PARTITIONING, _same(
        *_PARTITIONING_FIELDS)),
    ("", "partitioning.ModelBasedPjitPartitioner"): _all_commands(_PARTITIONING, _same(
        *_PARTITIONING_FIELDS)),
    ("", "partitioning.standard_logical_axis_rules"): _all_commands(_PARTITIONING, _same(
        "activation_partitioning_dims", "parameter_partitioning_dims", "additional_rules")),
    ("", "utils.RestoreCheckpointConfig"): _all_commands(
        _MODEL, {"path": "initial_checkpoint_path"}),
    ("", "utils.SaveCheckpointConfig"): {"train": (_CHECKPOINT, _same("period", "keep"))},
    ("", "trainer.Trainer"): {"train": (_TRAIN, _same("num_microbatches"))},
    ("", "utils.create_learning_rate_scheduler"): {"train": (_OPTIMIZER, {
        "base_learning_rate": "learning_rate", "warmup_steps": "warmup_steps"})},
    ("", "seqio.Evaluator"): {"train": (_EVAL, _same("num_examples")),
                              "eval": (_EVAL, _same("num_examples"))},
}

# T5X configurables a user may bind that have no counterpart at all (beyond those above).
_KNOWN_T5X = {"utils.DatasetConfig", "utils.CheckpointConfig", "utils.SaveCheckpointConfig",
              "utils.RestoreCheckpointConfig", "utils.create_learning_rate_scheduler",
              "trainer.Trainer", "seqio.Evaluator", "seqio.JSONLogger",
              "partitioning.PjitPartitioner", "partitioning.ModelBasedPjitPartitioner",
              "partitioning.standard_logical_axis_rules", "models.EncoderDecoderModel",
              "adafactor.Adafactor", "train_script.train", "eval_script.evaluate",
              "infer_script.infer", "decoding.beam_search", "decoding.temperature_sample"}

_WHY = {
    "train_eval": "T5X's teacher-forced validation loss (train_eval) is not computed here; the "
                  "dev set is scored with the task's metrics (infer_eval/utils.DatasetConfig.split "
                  "and .batch_size, or EVAL_BATCH_SIZE)",
}

# T5X macros without a counterpart, and why.
UNSUPPORTED_MACROS: Mapping[str, str] = {
    "EVAL_STEPS": "T5X's teacher-forced validation batches (train_eval) are not computed here",
    "USE_HARDWARE_RNG": "the prompt's dropout always uses JAX's default (reproducible) RNG",
    "JSON_WRITE_N_RESULTS": "evaluation writes metrics (eval_results.json, TensorBoard); "
                            "predictions come from `python -m prompt_tuning.infer`",
    "EVALUATOR_USE_MEMORY_CACHE": "the dev set is always cached in memory",
    "PACKING": "prompt tuning never packs examples (the prompt is prepended per example)",
}

_BINDING = re.compile(r"^\s*(?:(?P<scope>[\w.]+)/)?(?P<configurable>[A-Za-z_][\w.]*)\."
                      r"(?P<param>\w+)\s*=(?P<value>.*)$", re.DOTALL)


def translate(binding: str, command: str) -> str:
    """Our binding for `binding` if it names a T5X configurable; else `binding` itself.

    Raises `errors.UsageError` for a T5X setting this command has no counterpart for.
    """
    match = _BINDING.match(binding)
    if not match:
        return binding  # a macro, or something gin will report
    scope = match.group("scope") or ""
    configurable = re.sub(r"^t5x\.", "", match.group("configurable"))
    param, value = match.group("param"), match.group("value")
    if configurable not in _KNOWN_T5X:
        return binding
    target = _RENAMES.get((scope, configurable), {}).get(command)
    if target is not None and param in target[1]:
        ours, params = target
        return f"{ours}.{params[param]} ={value}"
    if configurable == "utils.DatasetConfig" and param == "pack" and value.strip() == "False":
        return ""  # what prompt tuning always does: nothing to bind
    name = f"{scope + '/' if scope else ''}{configurable}.{param}"
    raise errors.UsageError(f"T5X's {name} is not supported for {command}: "
                            f"{_WHY.get(scope, 'prompt_tuning has no counterpart')}. "
                            "README.md, 'Coming from T5X', lists what carries over.")


def import_task_module(module: Optional[str]) -> None:
    """Imports MIXTURE_OR_TASK_MODULE (T5X's way of registering a user's seqio tasks)."""
    if module is None:
        return
    if not isinstance(module, str) or not module:
        raise errors.UsageError(f"MIXTURE_OR_TASK_MODULE must be a module name such as "
                                f"'my_project.tasks', got {module!r}.")
    try:
        importlib.import_module(module)
    except Exception as e:  # pylint: disable=broad-except  # the user's module: any failure
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise errors.UsageError(f"MIXTURE_OR_TASK_MODULE {module!r} cannot be imported: "
                                f"{type(e).__name__}: {first}") from e
