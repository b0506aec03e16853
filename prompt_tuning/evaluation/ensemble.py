"""Prompt ensembles (Lester et al. 2021, sec. 6): N prompts, one frozen model, one batched pass.

Every example is evaluated with each of the N prompts in the same batch (the batch repeated N
times, each copy with another `prompt_ids`, over a `PaddedPromptTable`), and the members are
combined on the device:
  generate  majority vote over the decoded outputs (ties: the earliest prompt's output), as the
            paper's Table 3;
  rank      the label with the highest mean log-likelihood over the prompts.
A predictor returns `[batch, N + 1, length]`: each member's output, then the ensemble's; the
evaluator scores each row with the task's own postprocessor and metrics.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning import decoding
from prompt_tuning.data.features import PROMPT_IDS
from prompt_tuning.evaluation import predictors
from prompt_tuning.evaluation.evaluator import Metrics, TaskEvaluator
from prompt_tuning.model import Transformer

PyTree = Any
ENSEMBLE = "ensemble"


def _members(batch: dict, num_prompts: int) -> dict:
    """Each example repeated `num_prompts` times (example-major), copy k with prompt k."""
    inputs = batch["encoder_input_tokens"]
    return {"encoder_input_tokens": jnp.repeat(inputs, num_prompts, axis=0),
            PROMPT_IDS: jnp.tile(jnp.arange(num_prompts, dtype=jnp.int32), inputs.shape[0])}


def majority_vote(outputs: jax.Array) -> jax.Array:
    """[batch, N, length] -> [batch, length]: the most frequent output per example (ties: the
    earliest member's)."""
    same = jnp.all(outputs[:, :, None, :] == outputs[:, None, :, :], axis=-1)  # [b, N, N]
    winner = jnp.argmax(same.sum(axis=-1), axis=-1)  # argmax takes the first maximum
    return jnp.take_along_axis(outputs, winner[:, None, None], axis=1)[:, 0]


def generation_predictor(model: Transformer, config: decoding.DecodingConfig,
                         max_decode_length: int, eos_id: int, num_prompts: int):
    """[batch] -> [batch, N + 1, max_decode_length]: each prompt's decode, then the vote."""

    def predict(params: PyTree, batch: dict) -> jax.Array:
        members = _members(batch, num_prompts)
        tokens = decoding.generate(model, params, members["encoder_input_tokens"], config,
                                   max_decode_length, eos_id, members[PROMPT_IDS])
        tokens = tokens.reshape(-1, num_prompts, max_decode_length)
        return jnp.concatenate([tokens, majority_vote(tokens)[:, None]], axis=1)

    return predict


def rank_predictor(model: Transformer, label_ids: np.ndarray, num_prompts: int):
    """[batch] -> [batch, N + 1, target_length]: each prompt's best label, then the label of
    highest mean log-likelihood over the prompts."""
    scores = predictors.label_log_likelihoods(model, label_ids)
    labels = jnp.asarray(label_ids)

    def predict(params: PyTree, batch: dict) -> jax.Array:
        loglik = scores(params, _members(batch, num_prompts))              # [b*N, labels]
        loglik = loglik.reshape(-1, num_prompts, labels.shape[0])          # [b, N, labels]
        best = jnp.concatenate([jnp.argmax(loglik, axis=-1),
                                jnp.argmax(loglik.mean(axis=1), axis=-1)[:, None]], axis=1)
        return labels[best]                                                 # [b, N + 1, t]

    return predict


class EnsembleEvaluator(TaskEvaluator):
    """A `TaskEvaluator` whose predictor gives every member's output and the ensemble's
    (`[batch, N + 1, length]`); `evaluate` returns the ensemble's metrics and keeps each
    member's in `members` ({prompt name: {task: {metric: value}}})."""

    def __init__(self, names: Sequence[str], *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.names = list(names)
        self.members: dict[str, Metrics] = {}

    def evaluate(self, params: PyTree, step: Optional[int] = None) -> Metrics:
        rows: dict[str, dict[int, np.ndarray]] = {}
        self._row = 0
        self._cache = rows
        out: Metrics = {}
        self.members = {name: {} for name in self.names}
        for row, label in enumerate(self.names + [ENSEMBLE]):
            self._row = row
            metrics = super().evaluate(params, step)
            for task, values in metrics.items():
                (out if label == ENSEMBLE else self.members[label])[task] = values
        return out

    def _predict_fn(self, task_name: str, params: PyTree):
        base = super()._predict_fn(task_name, params)

        def predict_fn(dataset, model_feature_shapes=None):
            # One batched pass per task: computed for the first member, reused for the others.
            if task_name not in self._cache:
                self._cache[task_name] = dict(base(dataset, model_feature_shapes))
            return [(i, self._ids(all_rows[self._row]))
                    for i, all_rows in self._cache[task_name].items()]

        return predict_fn

    def _ids(self, tokens: np.ndarray) -> np.ndarray:
        # The base class maps each example's output through here: keep the [N + 1, length]
        # rows whole (cached above); one member's row then gets the base treatment.
        return tokens if tokens.ndim == 2 else super()._ids(tokens)
