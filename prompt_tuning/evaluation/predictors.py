"""Batch predictors: generation (greedy or beam search) and rank classification.

Each predictor maps `(params, batch) -> [batch, target_length]` token ids, so seqio's
Evaluator decodes, postprocesses and scores them with the task's own metrics either way.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning.model import Transformer
from prompt_tuning.training import step as step_lib

PyTree = Any
Predictor = Callable[[PyTree, dict], jax.Array]


@dataclasses.dataclass(frozen=True)
class DecodingConfig:
    """T5X's defaults for beam search: 4 beams, brevity penalty alpha 0.6."""

    method: str = "greedy"  # "greedy" | "beam"
    num_beams: int = 4
    alpha: float = 0.6

    def __post_init__(self):
        if self.method not in ("greedy", "beam"):
            raise ValueError(f"decoding method must be 'greedy' or 'beam', got {self.method!r}.")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}.")


def generation_predictor(model: Transformer, decoding: DecodingConfig, max_decode_length: int
                         ) -> Predictor:
    """Decodes from the encoder inputs alone; returns `[batch, max_decode_length]` ids."""
    from prompt_tuning import decoding as decoding_lib  # pylint: disable=import-outside-toplevel

    def predict(params: PyTree, batch: dict) -> jax.Array:
        tokens = batch["encoder_input_tokens"]
        encoded, mask = model.apply({"params": params}, tokens, method=Transformer.encode)
        batch_size = tokens.shape[0]
        if decoding.method == "greedy":
            fn = decoding_lib.make_tokens_to_logits(model, params, encoded, mask)
            out = decoding_lib.greedy_decode(fn, batch_size, max_decode_length)
            return out[0] if isinstance(out, tuple) else out
        beams = decoding.num_beams
        fn = decoding_lib.make_tokens_to_logits(model, params, jnp.repeat(encoded, beams, axis=0),
                                                jnp.repeat(mask, beams, axis=0))
        sequences, _ = decoding_lib.beam_search(fn, batch_size, max_decode_length,
                                                num_beams=beams, alpha=decoding.alpha)
        return sequences[:, 0]

    return predict


def label_targets(vocabulary: Any, labels: Sequence[str], max_length: int) -> np.ndarray:
    """Token ids of each label string plus EOS, zero-padded: `[num_labels, max_length]`."""
    rows = []
    for label in labels:
        ids = list(vocabulary.encode(label)) + [1]
        if len(ids) > max_length:
            raise ValueError(f"label {label!r} takes {len(ids)} tokens (with EOS), more than the "
                             f"target length {max_length}.")
        rows.append(ids + [0] * (max_length - len(ids)))
    return np.asarray(rows, np.int32)


def rank_classification_predictor(model: Transformer, label_ids: np.ndarray) -> Predictor:
    """Scores every label string for every example and predicts the most likely one.

    Args:
      label_ids: [num_labels, target_length] from `label_targets`.
    """
    score = step_lib.make_score_step(model)
    labels = jnp.asarray(label_ids)
    num_labels = labels.shape[0]

    def predict(params: PyTree, batch: dict) -> jax.Array:
        inputs = batch["encoder_input_tokens"]
        batch_size = inputs.shape[0]
        targets = jnp.tile(labels, (batch_size, 1))                       # [batch*labels, t]
        scored = score(params, {
            "encoder_input_tokens": jnp.repeat(inputs, num_labels, axis=0),
            "decoder_target_tokens": targets,
            "decoder_input_tokens": jnp.pad(targets[:, :-1], ((0, 0), (1, 0))),
            "decoder_loss_weights": (targets > 0).astype(jnp.int32),
        })
        best = jnp.argmax(scored["log_likelihood"].reshape(batch_size, num_labels), axis=-1)
        return labels[best]

    return predict
