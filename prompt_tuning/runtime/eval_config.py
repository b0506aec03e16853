"""How the dev set is evaluated: shared by training's periodic evaluation and the eval command."""

from __future__ import annotations

import dataclasses
from typing import Optional

from prompt_tuning import errors
from prompt_tuning.decoding.config import DecodingConfig

MODES = ("generate", "rank")


def _positive_int_or_none(value) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """How the dev set is evaluated.

    Attributes:
      mixture_or_task_name: None: the training task or mixture (each sub-task is evaluated).
      split: the dev split.
      batch_size: examples per predictor call (the last batch is padded).
      mode: "generate" (decode, then the task's postprocessor and metrics, as T5 does) or
        "rank" (rank classification: score every label string, pick the best).
      decoding: greedy or beam search settings for "generate".
      num_examples: evaluate on the first N examples only (None: all).
      metric: "task/metric" used to select the best prompt; None: the mean of all metrics
        (the paper's choice for tasks with several).
      use_cached: read the tasks' seqio cache (USE_CACHED_TASKS), prepared offline.
    """

    mixture_or_task_name: Optional[str] = None
    split: str = "validation"
    batch_size: int = 32
    mode: str = "generate"
    decoding: DecodingConfig = DecodingConfig()
    num_examples: Optional[int] = None
    metric: Optional[str] = None
    use_cached: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise errors.UsageError(f"EvalConfig.mode must be 'generate' or 'rank' (EVAL_MODE), "
                                    f"got {self.mode!r}.")
        if self.batch_size is None or not _positive_int_or_none(self.batch_size):
            raise errors.UsageError(f"the evaluation batch size must be a positive integer "
                                    f"(EVAL_BATCH_SIZE), got {self.batch_size!r}.")
        if not _positive_int_or_none(self.num_examples):
            raise errors.UsageError(f"num_examples must be a positive integer or None, got "
                                    f"{self.num_examples!r}.")
        if not isinstance(self.split, str) or not self.split:
            raise errors.UsageError(f"the evaluation split must be a name such as 'validation', "
                                    f"got {self.split!r}.")
        if not isinstance(self.decoding, DecodingConfig):
            raise errors.UsageError(f"EvalConfig.decoding must be a DecodingConfig, got "
                                    f"{self.decoding!r}.")
        if self.metric is not None and (not isinstance(self.metric, str) or "/" not in self.metric):
            raise errors.UsageError(f"the selection metric must be 'task/metric' or None, got "
                                    f"{self.metric!r}.")

    def describe(self) -> str:
        """`rank` or `generate, greedy` / `generate, beam search (...)`, for output lines."""
        return "rank" if self.mode == "rank" else f"generate, {self.decoding.describe()}"
