"""Generation from encoder inputs: encode once (prompt included), then greedy or beam search
with a key/value cache (or, `cached=False`, recomputing the decoder at every step)."""

from __future__ import annotations

from typing import Any, Optional

import jax

from prompt_tuning.decoding.beam_search import beam_search
from prompt_tuning.decoding.config import DecodingConfig
from prompt_tuning.decoding.greedy import greedy_decode
from prompt_tuning.decoding.model_adapter import (decoding_cache_rows, make_cached_step,
                                                  make_tokens_to_logits)
from prompt_tuning.model import Transformer

Array = jax.Array
PyTree = Any


def generate(model: Transformer, params: PyTree, encoder_input_tokens: Array,
             decoding: DecodingConfig, max_decode_length: int, eos_id: int,
             prompt_ids: Optional[Array] = None, cached: bool = True) -> Array:
    """Decodes every example; jit-able as a whole.

    Args:
      model, params: the (prompted) model.
      encoder_input_tokens: [batch, input_length] int32, 0 for padding.
      decoding: greedy, or beam search (the best beam is returned).
      max_decode_length: tokens per output, EOS included.
      eos_id: the vocabulary's end-of-sequence id.
      prompt_ids: [batch] int, which prompt of a table each example uses (None: one prompt).
      cached: keep the decoded positions' keys and values (O(length) work per step) rather
        than recompute the decoder over the whole buffer (O(length^2)); the same tokens.
    Returns:
      [batch, max_decode_length] int32 ids; 0 after EOS.
    """
    encoded, mask = model.apply({"params": params}, encoder_input_tokens, prompt_ids,
                                method=Transformer.encode)
    batch_size = encoder_input_tokens.shape[0]
    beams = 1 if decoding.method == "greedy" else decoding.num_beams
    if cached:
        fn, cache = make_cached_step(model, params, encoded, mask, max_decode_length, beams)
    else:
        fn, cache = make_tokens_to_logits(model, params, encoded, mask, num_beams=beams), None
    if decoding.method == "greedy":
        return greedy_decode(fn, batch_size, max_decode_length, eos_id=eos_id,
                             cache=cache).tokens
    sequences, _ = beam_search(fn, batch_size, max_decode_length, num_beams=beams,
                               alpha=decoding.alpha, eos_id=eos_id, cache=cache,
                               reorder_cache=decoding_cache_rows)
    return sequences[:, 0]
