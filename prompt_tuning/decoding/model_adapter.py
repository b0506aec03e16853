"""Decoding callbacks from our `Transformer` and precomputed encoder outputs: full recompute
(`make_tokens_to_logits`) or with a key/value cache (`make_cached_step`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from prompt_tuning.decoding.interface import (CachedTokensToLogits, TokensToLogits,
                                              check_positive)
from prompt_tuning.model import DecodingCache, Transformer
from prompt_tuning.model.decoder import reorder_rows

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


def make_cached_step(model: Transformer, params: PyTree, encoded: Array, encoder_mask: Array,
                     max_decode_length: int, num_beams: int = 1
                     ) -> tuple[CachedTokensToLogits, DecodingCache]:
    """A cached callback: each step runs the decoder over one position only.

    The encoder outputs' cross-attention keys and values are computed here, once, for the
    `batch` examples (the beams of one example share them); the self-attention keys and values
    of the decoded positions are kept in the cache, one row per sequence (`batch * num_beams`).

    Args:
      model, params: the (prompted) model and its parameters.
      encoded: [batch, input_length, embed] encoder outputs, not repeated per beam.
      encoder_mask: [batch, input_length] bool.
      max_decode_length: the length of the loops' token buffer.
      num_beams: sequences per example (1: greedy).
    Returns:
      (`(tokens [batch * num_beams, max_decode_length], step, cache) -> (logits, cache)`, the
      initial cache). For beam search pass `reorder_cache=decoding_cache_rows`.
    """
    check_positive("num_beams", num_beams)
    check_positive("max_decode_length", max_decode_length)
    cache = model.apply({"params": params}, encoded, encoder_mask,
                        encoded.shape[0] * num_beams, max_decode_length,
                        method=Transformer.init_decoding_cache)

    def step_fn(decoder_input_tokens: Array, step: Array, cache: DecodingCache
                ) -> tuple[Array, DecodingCache]:
        token = lax.dynamic_index_in_dim(decoder_input_tokens, step, axis=1, keepdims=False)
        return model.apply({"params": params}, token, step, cache,
                           method=Transformer.decode_step)

    return step_fn, cache


def decoding_cache_rows(cache: DecodingCache, rows: Array) -> DecodingCache:
    """Beam search's `reorder_cache` for `make_cached_step`: only the self-attention rows move."""
    return reorder_rows(cache, rows)
