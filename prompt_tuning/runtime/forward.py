"""The model's forward pass over a batch, and the score step built on it.

Batches are seqio `EncDecFeatureConverter` outputs (`encoder_input_tokens`,
`decoder_input_tokens`, `decoder_target_tokens`, `decoder_loss_weights`, all `[batch, length]`
int32), optionally with `prompt_ids` `[batch]` int (which prompt of a table each example uses).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp

from prompt_tuning.data.features import PROMPT_IDS
from prompt_tuning.model import Transformer

Array = jax.Array
PyTree = Any
Batch = Mapping[str, Array]


def logits(model: Transformer, params: PyTree, batch: Batch,
           dropout_rng: Optional[Array] = None) -> Array:
    """Teacher-forced logits `[batch, target_length, vocab]` float32; dropout iff `dropout_rng`."""
    rngs = {"dropout": dropout_rng} if dropout_rng is not None else {}
    return model.apply({"params": params}, batch["encoder_input_tokens"],
                       batch["decoder_input_tokens"], batch["decoder_target_tokens"],
                       enable_dropout=dropout_rng is not None, rngs=rngs,
                       prompt_ids=batch.get(PROMPT_IDS))


def token_log_probs(logits_: Array, targets: Array, weights: Array) -> Array:
    """log p(target token) at each position, 0 where `weights` is 0. -> [batch, length] float32."""
    log_probs = jax.nn.log_softmax(logits_.astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    return jnp.where(weights > 0, picked, 0.0)


def make_score_step(model: Transformer) -> Callable[[PyTree, Batch], dict[str, Array]]:
    """`score_step(params, batch) -> {"log_likelihood": [batch], "token_log_probs": [batch, t]}`.

    Like T5X's `score_batch`: the sum of target-token log-probabilities, padding masked.
    """

    def score_step(params: PyTree, batch: Batch) -> dict[str, Array]:
        out = logits(model, params, batch)
        weights = batch.get("decoder_loss_weights", batch["decoder_target_tokens"] > 0)
        per_token = token_log_probs(out, batch["decoder_target_tokens"], weights)
        return {"log_likelihood": per_token.sum(axis=-1), "token_log_probs": per_token}

    return score_step
