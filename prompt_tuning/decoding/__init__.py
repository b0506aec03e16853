"""Decoding for the encoder-decoder: greedy and T5X-style beam search, as pure jit-able JAX.

Typical use (everything under one `jax.jit`): `generate(model, params, inputs, DecodingConfig(),
max_decode_length, eos_id)`, or the pieces it is made of:

    encoded, mask = model.apply({"params": params}, inputs, method=Transformer.encode)
    fn = make_tokens_to_logits(model, params, encoded, mask)
    tokens, log_probs = greedy_decode(fn, batch_size, max_decode_length)

    fn = make_tokens_to_logits(model, params, encoded, mask, num_beams=4)
    sequences, scores = beam_search(fn, batch_size, max_decode_length, num_beams=4)
    prediction = sequences[:, 0]

    # the same with a key/value cache: one decoder position per step
    fn, cache = make_cached_step(model, params, encoded, mask, max_decode_length, num_beams=4)
    sequences, scores = beam_search(fn, batch_size, max_decode_length, num_beams=4, cache=cache,
                                    reorder_cache=decoding_cache_rows)
"""

from prompt_tuning.decoding.beam_search import BeamSearchOutput, beam_search, brevity_penalty
from prompt_tuning.decoding.config import DecodingConfig
from prompt_tuning.decoding.generate import generate
from prompt_tuning.decoding.greedy import GreedyOutput, greedy_decode
from prompt_tuning.decoding.interface import CachedTokensToLogits, TokensToLogits
from prompt_tuning.decoding.model_adapter import (decoding_cache_rows, make_cached_step,
                                                  make_tokens_to_logits)

__all__ = ["BeamSearchOutput", "CachedTokensToLogits", "DecodingConfig", "GreedyOutput",
           "TokensToLogits", "beam_search", "brevity_penalty", "decoding_cache_rows", "generate",
           "greedy_decode", "make_cached_step", "make_tokens_to_logits"]
