"""Builds a `TokensToLogits` callback from our `Transformer` and precomputed encoder outputs."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from prompt_tuning.decoding.interface import TokensToLogits, check_positive
from prompt_tuning.model import Transformer

Array = jax.Array
PyTree = Any


def make_tokens_to_logits(model: Transformer, params: PyTree, encoded: Array,
                          encoder_mask: Array, num_beams: int = 1) -> TokensToLogits:
    """A full-recompute callback: runs `Transformer.decode` over the whole buffer each step.

    Encode once (`model.apply(..., method=Transformer.encode)`), then decode many times. For
    beam search the callback sees `batch * num_beams` rows; either pass encoder outputs already
    repeated per beam (`jnp.repeat(x, num_beams, axis=0)`), or pass `num_beams` and they are
    repeated here, once, outside the decoding loop.

    Args:
      model: the model whose `decode` is used (with or without a prompt: the prompt lives in
        the encoder outputs).
      params: its (unboxed) parameters.
      encoded: [batch, input_length, embed] encoder outputs.
      encoder_mask: [batch, input_length] bool, true on real (non-padding) positions.
      num_beams: copies of each example to make (1: none).
    Returns:
      `(decoder_input_tokens [batch * num_beams, max_len], step) -> [batch * num_beams, vocab]`
      float32 logits at position `step`.
    """
    check_positive("num_beams", num_beams)
    if encoded.ndim != 3 or encoder_mask.shape != encoded.shape[:2]:
        raise ValueError(f"expected encoded [batch, length, embed] and encoder_mask "
                         f"[batch, length], got {tuple(encoded.shape)} and "
                         f"{tuple(encoder_mask.shape)}.")
    if num_beams > 1:
        encoded = jnp.repeat(encoded, num_beams, axis=0)
        encoder_mask = jnp.repeat(encoder_mask, num_beams, axis=0)

    def tokens_to_logits(decoder_input_tokens: Array, step: Array) -> Array:
        if decoder_input_tokens.shape[0] != encoded.shape[0]:
            raise ValueError(f"decoder_input_tokens has {decoder_input_tokens.shape[0]} rows "
                             f"but the encoder outputs have {encoded.shape[0]}; for beam "
                             f"search pass num_beams to make_tokens_to_logits.")
        # No decoder_target_tokens: only causality masks the decoder, so the 0s (or stale
        # tokens) after `step` cannot change the logits at `step`.
        logits = model.apply({"params": params}, encoded, encoder_mask, decoder_input_tokens,
                             method=Transformer.decode)
        return lax.dynamic_index_in_dim(logits, step, axis=1, keepdims=False)

    return tokens_to_logits
