"""Runs a predictor over a task's dev split and computes the task's metrics (seqio.Evaluator).

`TaskEvaluator` is what the training loop receives (its `Evaluator` protocol) and what the eval
command runs: `evaluate(params, step) -> {task: {metric: value}}` and `selection_score(metrics)`.
On a `Placement` the predictions run on the run's mesh (the frozen model sharded as in training,
batches split over 'data' and hosts) and come back whole to every host, which computes the same
metrics from them (every host needs them: they decide, together, which prompt is the best).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import jax
import numpy as np

from prompt_tuning import errors
from prompt_tuning.evaluation import predictors
from prompt_tuning.model import Transformer
from prompt_tuning.runtime import EvalConfig, Placement

PyTree = Any
Metrics = dict[str, dict[str, float]]


def subtasks(name: str) -> list[Any]:
    from prompt_tuning.data.tensorflow_quiet import seqio  # pylint: disable=import-outside-toplevel

    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    return [t for t in seqio.get_subtasks(tasks.get_task_or_mixture(name))
            if t.metric_fns or getattr(t, "predict_metric_fns", None)]


def selection_score(metrics: Mapping[str, Mapping[str, float]], metric: Optional[str] = None
                    ) -> float:
    """One number to select the best prompt on: a named "task/metric", or the mean of all."""
    if metric is not None:
        task, _, name = metric.partition("/")
        if task not in metrics or name not in metrics[task]:
            available = [f"{t}/{m}" for t, ms in metrics.items() for m in ms]
            raise errors.UsageError(f"Selection metric {metric!r} was not computed; available: "
                                    f"{available}.")
        return float(metrics[task][name])
    values = [v for ms in metrics.values() for v in ms.values()]
    return float(np.mean(values)) if values else float("nan")


class TaskEvaluator:
    """seqio Evaluators for each sub-task with metrics, sharing one jitted predictor per task."""

    def __init__(self, config: EvalConfig, task_feature_lengths: Mapping[str, int],
                 make_predictor: Callable[[Any], predictors.Predictor], vocabulary: Any,
                 placement: Optional[Placement] = None, params_shardings: Any = None):
        from prompt_tuning.data import truncation  # pylint: disable=import-outside-toplevel
        from prompt_tuning.data.tensorflow_quiet import seqio  # pylint: disable=import-outside-toplevel

        self.config = config
        self.batch_size = config.batch_size
        self._vocabulary = vocabulary
        self._placement = placement
        if placement is not None:
            placement.check_batch_size(config.batch_size)
        self._evaluators = {}
        self._predictors = {}
        self.samples: dict[str, dict[str, str]] = {}
        for task in subtasks(config.mixture_or_task_name):
            # seqio's Evaluator reads (and caches) the whole split here: what was cut is known.
            with truncation.counting(truncation.Truncation()) as cut:
                self._evaluators[task.name] = seqio.Evaluator(
                    task.name, seqio.EncDecFeatureConverter(pack=False), eval_split=config.split,
                    use_cached=config.use_cached,
                    sequence_length=dict(task_feature_lengths), num_examples=config.num_examples,
                    logger_cls=(), use_memory_cache=True)
            cut.note(task_feature_lengths, f"{task.name} {config.split}")
            predictor = make_predictor(task)
            self._predictors[task.name] = (
                jax.jit(predictor) if placement is None
                else placement.jit_predict(predictor, params_shardings))
        if not self._evaluators:
            raise errors.UsageError(
                f"{config.mixture_or_task_name!r} has no task with metrics to evaluate.")

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
                tokens = self._predict(predict, params, batch)[:len(chunk)]
                results += [(i, self._ids(t)) for i, t in zip(indices, tokens)]
            return results

        return predict_fn

    def _predict(self, predict, params: PyTree, batch: dict) -> np.ndarray:
        if self._placement is None:
            return np.asarray(jax.device_get(predict(params, batch)))
        return np.asarray(self._placement.fetch(predict(params, self._placement.put_batch(batch))))

    def _ids(self, tokens: np.ndarray) -> np.ndarray:
        """The ids before EOS, padded back to the row's width: seqio stacks the predictions of
        a task into one array, so they must all have one length (as T5X's decodes do)."""
        from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel
        ids = vocab.ids_before_eos(tokens, self._vocabulary)
        row = np.full(tokens.shape[-1], self._vocabulary.pad_id, np.int32)
        row[:len(ids)] = ids
        return row

    def evaluate(self, params: PyTree, step: Optional[int] = None) -> Metrics:
        """{task name: {metric name: value}}; text metrics (the `_examples` tasks' samples) go
        to `self.samples` ({task name: {name: text}}) instead."""
        from prompt_tuning.data.tensorflow_quiet import seqio  # pylint: disable=import-outside-toplevel

        out: Metrics = {}
        self.samples = {}
        for name, evaluator in self._evaluators.items():
            future, _ = evaluator.evaluate(compute_metrics=True, step=step,
                                           predict_fn=self._predict_fn(name, params))
            values = future.result()[name]
            texts = {k: v.textdata for k, v in values.items() if isinstance(v, seqio.metrics.Text)}
            out[name] = {k: float(getattr(v, "value", v)) for k, v in values.items()
                         if k not in texts}
            if texts:
                self.samples[name] = texts
        return out

    def selection_score(self, metrics: Mapping[str, Mapping[str, float]]) -> float:
        """The number the best prompt is selected on (`EvalConfig.metric`, or the mean)."""
        return selection_score(metrics, self.config.metric)


def rank_labels(task: Any) -> list[str]:
    """The label strings rank classification scores for `task` (refused if it has none)."""
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    labels = tasks.get_label_classes(task.name)
    if not labels:
        raise errors.UsageError(f"Rank classification needs label strings; task "
                                f"{task.name!r} has none (use EVAL_MODE='generate').")
    return list(labels)


def task_evaluator(config: EvalConfig, task_feature_lengths: Mapping[str, int],
                   model: Transformer, vocabulary: Any, placement: Optional[Placement] = None,
                   params_shardings: Any = None,
                   prompt_index: Optional[Mapping[str, int]] = None) -> TaskEvaluator:
    """The evaluator of `config`'s task for `model` (generation or rank classification),
    on `placement`'s mesh with parameters on `params_shardings` (None: one device).
    `prompt_index`: {task: its row of the model's prompt table} (a multi-task run)."""
    if prompt_index is not None:
        missing = [t.name for t in subtasks(config.mixture_or_task_name)
                   if t.name not in prompt_index]
        if missing:
            raise errors.UsageError(f"task {missing[0]!r} is evaluated but trains no prompt of "
                                    f"its own (it has no training split); evaluate the "
                                    f"trained tasks ({sorted(prompt_index)}) with "
                                    "eval_config.EvalConfig.mixture_or_task_name.")

    def make_predictor(task):
        if config.mode == "generate":
            predict = predictors.generation_predictor(model, config.decoding,
                                                      task_feature_lengths["targets"],
                                                      vocabulary.eos_id)
        else:
            labels = rank_labels(task)
            predict = predictors.rank_classification_predictor(
                model, predictors.label_targets(vocabulary, labels,
                                                task_feature_lengths["targets"]))
        if prompt_index is None:
            return predict
        return predictors.with_prompt_id(predict, prompt_index[task.name])

    return TaskEvaluator(config, task_feature_lengths, make_predictor, vocabulary, placement,
                         params_shardings)
