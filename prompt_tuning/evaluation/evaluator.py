"""Runs a predictor over a task's validation split and computes the task's metrics."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional

import jax
import numpy as np

from prompt_tuning.evaluation import predictors

PyTree = Any


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
    """

    mixture_or_task_name: Optional[str] = None
    split: str = "validation"
    batch_size: int = 32
    mode: str = "generate"
    decoding: predictors.DecodingConfig = predictors.DecodingConfig()
    num_examples: Optional[int] = None
    metric: Optional[str] = None

    def __post_init__(self):
        if self.mode not in ("generate", "rank"):
            raise ValueError(f"EvalConfig.mode must be 'generate' or 'rank', got {self.mode!r}.")


def _subtasks(name: str) -> list[Any]:
    import seqio  # pylint: disable=import-outside-toplevel

    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    return [t for t in seqio.get_subtasks(tasks.get_task_or_mixture(name))
            if t.metric_fns or getattr(t, "predict_metric_fns", None)]


class TaskEvaluator:
    """seqio Evaluators for each sub-task with metrics, sharing one jitted predictor per task."""

    def __init__(self, config: EvalConfig, task_feature_lengths: Mapping[str, int],
                 make_predictor: Callable[[Any], predictors.Predictor]):
        import seqio  # pylint: disable=import-outside-toplevel

        self.config = config
        self.batch_size = config.batch_size
        self._evaluators = {}
        self._predictors = {}
        for task in _subtasks(config.mixture_or_task_name):
            self._evaluators[task.name] = seqio.Evaluator(
                task.name, seqio.EncDecFeatureConverter(pack=False), eval_split=config.split,
                sequence_length=dict(task_feature_lengths), num_examples=config.num_examples,
                logger_cls=(), use_memory_cache=True)
            self._predictors[task.name] = jax.jit(make_predictor(task))
        if not self._evaluators:
            raise ValueError(f"{config.mixture_or_task_name!r} has no task with metrics to evaluate.")

    def _predict_fn(self, task_name: str, params: PyTree):
        predict = self._predictors[task_name]

        def predict_fn(dataset, model_feature_shapes=None):
            results = []
            examples = list(dataset.as_numpy_iterator())
            for start in range(0, len(examples), self.batch_size):
                chunk = examples[start:start + self.batch_size]
                indices = [int(i) for i, _ in chunk]
                batch = {k: np.stack([ex[k] for _, ex in chunk]) for k in chunk[0][1]}
                pad = self.batch_size - len(chunk)  # keep one compiled shape
                batch = {k: np.pad(v, [(0, pad)] + [(0, 0)] * (v.ndim - 1)) for k, v in batch.items()}
                tokens = np.asarray(jax.device_get(predict(params, batch)))[:len(chunk)]
                results += [(i, _trim_after_eos(t)) for i, t in zip(indices, tokens)]
            return results

        return predict_fn

    def evaluate(self, params: PyTree, step: Optional[int] = None) -> dict[str, dict[str, float]]:
        """{task name: {metric name: value}}."""
        out = {}
        for name, evaluator in self._evaluators.items():
            future, _ = evaluator.evaluate(compute_metrics=True, step=step,
                                           predict_fn=self._predict_fn(name, params))
            out[name] = {k: float(v) for k, v in future.result()[name].items()}
        return out


def _trim_after_eos(tokens: np.ndarray) -> list[int]:
    ids = [int(t) for t in tokens]
    return ids[:ids.index(1)] if 1 in ids else [t for t in ids if t != 0]


def selection_score(metrics: Mapping[str, Mapping[str, float]], metric: Optional[str] = None
                    ) -> float:
    """One number to select the best prompt on: a named "task/metric", or the mean of all."""
    if metric is not None:
        task, _, name = metric.partition("/")
        if task not in metrics or name not in metrics[task]:
            available = [f"{t}/{m}" for t, ms in metrics.items() for m in ms]
            raise ValueError(f"Selection metric {metric!r} was not computed; available: {available}.")
        return float(metrics[task][name])
    values = [v for ms in metrics.values() for v in ms.values()]
    return float(np.mean(values)) if values else float("nan")
