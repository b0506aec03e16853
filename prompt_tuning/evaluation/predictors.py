"""Batch predictors: generation (greedy or beam search) and rank classification.

Each predictor maps `(params, batch) -> [batch, target_length]` token ids, so seqio's
Evaluator decodes, postprocesses and scores them with the task's own metrics either way.
A batch may carry `prompt_ids` `[batch]` (a prompt table's row per example); both predictors
pass them on.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning import decoding, errors
from prompt_tuning.data.features import PROMPT_IDS
from prompt_tuning.model import Transformer
from prompt_tuning.runtime import make_score_step

PyTree = Any
Predictor = Callable[[PyTree, dict], jax.Array]


def generation_predictor(model: Transformer, config: decoding.DecodingConfig,
                         max_decode_length: int, eos_id: int) -> Predictor:
    """Decodes from the encoder inputs alone; returns `[batch, max_decode_length]` ids."""

    def predict(params: PyTree, batch: dict) -> jax.Array:
        return decoding.generate(model, params, batch["encoder_input_tokens"], config,
                                 max_decode_length, eos_id, batch.get(PROMPT_IDS))

    return predict


def label_targets(vocabulary: Any, labels: Sequence[str], max_length: int) -> np.ndarray:
    """Token ids of each label string plus EOS, padded: `[num_labels, max_length]`."""
    rows = []
    for label in labels:
        ids = list(vocabulary.encode(label)) + [vocabulary.eos_id]
        if len(ids) > max_length:
            raise errors.UsageError(f"label {label!r} takes {len(ids)} tokens (with EOS), more "
                                    f"than the target length {max_length}.")
        rows.append(ids + [vocabulary.pad_id] * (max_length - len(ids)))
    return np.asarray(rows, np.int32)


def rank_classification_predictor(model: Transformer, label_ids: np.ndarray) -> Predictor:
    """Scores every label string for every example and predicts the most likely one.

    Args:
      label_ids: [num_labels, target_length] from `label_targets`.
    """
    scores = label_log_likelihoods(model, label_ids)
    labels = jnp.asarray(label_ids)

    def predict(params: PyTree, batch: dict) -> jax.Array:
        return labels[jnp.argmax(scores(params, batch), axis=-1)]

    return predict


def label_log_likelihoods(model: Transformer, label_ids: np.ndarray
                          ) -> Callable[[PyTree, dict], jax.Array]:
    """`fn(params, batch) -> [batch, num_labels]`: each label string's log-likelihood for each
    example (its `prompt_ids`, if any, kept), in one forward pass over batch x labels rows.

    Args:
      label_ids: [num_labels, target_length] from `label_targets`.
    """
    score = make_score_step(model)
    labels = jnp.asarray(label_ids)
    num_labels = labels.shape[0]

    def scores(params: PyTree, batch: dict) -> jax.Array:
        inputs = batch["encoder_input_tokens"]
        batch_size = inputs.shape[0]
        targets = jnp.tile(labels, (batch_size, 1))                       # [batch*labels, t]
        expanded = {
            "encoder_input_tokens": jnp.repeat(inputs, num_labels, axis=0),
            "decoder_target_tokens": targets,
            "decoder_input_tokens": jnp.pad(targets[:, :-1], ((0, 0), (1, 0))),
            "decoder_loss_weights": (targets > 0).astype(jnp.int32),
        }
        if batch.get(PROMPT_IDS) is not None:
            expanded[PROMPT_IDS] = jnp.repeat(batch[PROMPT_IDS], num_labels, axis=0)
        return score(params, expanded)["log_likelihood"].reshape(batch_size, num_labels)

    return scores


def with_prompt_id(predict: Predictor, prompt_id: int) -> Predictor:
    """`predict` with every example using row `prompt_id` of the model's prompt table (a
    multi-task run's prompt for this task)."""

    def run(params: PyTree, batch: dict) -> jax.Array:
        rows = batch["encoder_input_tokens"].shape[0]
        return predict(params, {**batch, PROMPT_IDS: jnp.full((rows,), prompt_id, jnp.int32)})

    return run
