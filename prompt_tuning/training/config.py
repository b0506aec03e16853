"""A training run's whole config, as one validated tree that gin builds.

    train_config.TrainConfig:
      model_dir = %MODEL_DIR
      train_steps = %TRAIN_STEPS
      train_dataset = @pipeline.DatasetConfig()
      model = %MODEL
      ...

Every node validates itself when gin builds it (`__post_init__`), and the tree checks what
spans nodes (the prompt plus the inputs must fit the model), so a mistake is reported before
anything is read or written. `identity()` is what a resumed run must agree on.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional

from prompt_tuning import errors, paths, shapes_only
from prompt_tuning.data.pipeline import DatasetConfig
from prompt_tuning.partitioning import PartitioningConfig
from prompt_tuning.prompts import PromptConfig
from prompt_tuning.runtime import EvalConfig, ModelConfig
from prompt_tuning.training.losses import LossConfig
from prompt_tuning.training.optim import AdafactorConfig

# Fields that may differ when a run is resumed: how long and how often, and how the work is laid
# out on the devices, not what is trained.
RESUMABLE_CHANGES = ("model_dir", "train_steps", "eval_period", "log_period", "progress",
                     "checkpoint", "partitioning", "model.remat_policy")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """How often the run is checkpointed (`CHECKPOINT_PERIOD`) and how many are kept."""

    period: int = 1000
    keep: int = 2

    def __post_init__(self):
        for name, minimum in (("period", 1), ("keep", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                macro = "CHECKPOINT_PERIOD" if name == "period" else "CHECKPOINTS_TO_KEEP"
                raise errors.UsageError(
                    f"{macro} must be an integer >= {minimum}, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything `training.loop.train` needs.

    Attributes:
      model_dir: the run's directory (MODEL_DIR); created, or resumed if it holds this run.
      train_steps: TRAIN_STEPS: the step to reach, counted as T5X does when the initial
        checkpoint records a step (`train_steps.prompt_steps`), else prompt-tuning steps.
      train_dataset: the training examples.
      model: the frozen model.
      prompt: the soft prompt.
      optimizer: Adafactor settings.
      loss: the loss.
      evaluation: the periodic dev-set evaluation (None: none, and no best prompt); its task
        defaults to the training task.
      eval_period: evaluate every this many steps (EVAL_PERIOD), and at the last step.
      checkpoint: checkpoint period and keep-N.
      partitioning: the device mesh and axis rules.
      seed: data order, prompt initialisation and dropout derive from it.
      log_period: write training scalars every this many steps.
      progress: show a progress line on stderr.
      num_microbatches: split each batch into this many slices whose gradients are summed
        (NUM_MICROBATCHES, T5X's microbatching): the same update with a fraction of the
        activation memory; the per-host batch must divide evenly.
    """

    model_dir: str
    train_steps: int
    train_dataset: DatasetConfig
    model: ModelConfig
    prompt: PromptConfig = PromptConfig()
    optimizer: AdafactorConfig = AdafactorConfig()
    loss: LossConfig = LossConfig()
    evaluation: Optional[EvalConfig] = EvalConfig()
    eval_period: int = 1000
    checkpoint: CheckpointConfig = CheckpointConfig()
    partitioning: PartitioningConfig = PartitioningConfig()
    seed: int = 0
    log_period: int = 10
    progress: bool = True
    num_microbatches: int = 1

    def __post_init__(self):
        if not isinstance(self.model_dir, str) or not self.model_dir:
            raise errors.UsageError(f"MODEL_DIR must be a directory path, got "
                                    f"{self.model_dir!r}.")
        if not paths.is_local(self.model_dir) and not shapes_only.active():
            raise errors.UsageError(f"MODEL_DIR must be a local directory, got "
                                    f"{self.model_dir!r}.")
        object.__setattr__(self, "model_dir", paths.resolve(self.model_dir))
        for name, macro in (("train_steps", "TRAIN_STEPS"), ("eval_period", "EVAL_PERIOD"),
                            ("log_period", "log_period"),
                            ("num_microbatches", "NUM_MICROBATCHES")):
            if not _positive_int(getattr(self, name)):
                raise errors.UsageError(f"{macro} must be a positive integer, got "
                                        f"{getattr(self, name)!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise errors.UsageError(f"SEED must be an integer, got {self.seed!r}.")
        expected = (("train_dataset", DatasetConfig), ("model", ModelConfig),
                    ("prompt", PromptConfig), ("optimizer", AdafactorConfig),
                    ("loss", LossConfig), ("checkpoint", CheckpointConfig),
                    ("partitioning", PartitioningConfig))
        for name, kind in expected:
            if not isinstance(getattr(self, name), kind):
                raise errors.UsageError(f"TrainConfig.{name} must be a {kind.__name__}, got "
                                        f"{getattr(self, name)!r}.")
        if self.evaluation is not None:
            if not isinstance(self.evaluation, EvalConfig):
                raise errors.UsageError(f"TrainConfig.evaluation must be an EvalConfig or None, "
                                        f"got {self.evaluation!r}.")
            if self.evaluation.mixture_or_task_name is None:
                object.__setattr__(self, "evaluation", dataclasses.replace(
                    self.evaluation,
                    mixture_or_task_name=self.train_dataset.mixture_or_task_name))
        if self.train_dataset.batch_size % self.num_microbatches:
            raise errors.UsageError(
                f"BATCH_SIZE {self.train_dataset.batch_size} does not split into "
                f"NUM_MICROBATCHES {self.num_microbatches} equal parts.")
        self.model.check_input_length(self.prompt.length,
                                      self.train_dataset.task_feature_lengths["inputs"])

    def identity(self) -> dict[str, Any]:
        """What makes this run this run: the whole config as JSON-able data, less the fields
        that may change on resume (`RESUMABLE_CHANGES`). Stored in MODEL_DIR/run.json."""
        described = describe(self)
        for name in RESUMABLE_CHANGES:
            *parents, last = name.split(".")
            node = described
            for parent in parents:
                node = node.get(parent) or {}
            node.pop(last, None)
        return described


def _describe_callable(fn: Callable) -> dict[str, Any]:
    """A function by name, with what gin bound to its arguments (an initializer's settings)."""
    import gin  # pylint: disable=import-outside-toplevel

    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    try:
        bindings = gin.get_bindings(fn)
    except (ValueError, TypeError, KeyError):
        bindings = {}
    return {"function": name, **({"bindings": describe(bindings)} if bindings else {})}


def describe(value: Any) -> Any:
    """Config values as plain JSON data: dataclasses and mappings as dicts, sequences as lists,
    functions by qualified name (+ gin bindings); anything else by `repr`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if callable(value):
        return _describe_callable(value)
    return repr(value)
