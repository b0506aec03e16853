"""Decoding for the encoder-decoder: greedy and T5X-style beam search, as pure jit-able JAX.

Typical use (everything under one `jax.jit`): `generate(model, params, inputs, DecodingConfig(),
max_decode_length, eos_id)`, or the pieces it is made of:

    encoded, mask = model.apply({"params": params}, inputs, method=Transformer.encode)
    fn = make_tokens_to_logits(model, params, encoded, mask)
    tokens, log_probs = greedy_decode(fn, batch_size, max_decode_length)

    fn = make_tokens_to_logits(model, params, encoded, mask, num_beams=4)
    sequences, scores = beam_search(fn, batch_size, max_decode_length, num_beams=4)
    prediction = sequences[:, 0]
"""

from prompt_tuning.decoding.beam_search import BeamSearchOutput, beam_search, brevity_penalty
from prompt_tuning.decoding.config import DecodingConfig
from prompt_tuning.decoding.generate import generate
from prompt_tuning.decoding.greedy import GreedyOutput, greedy_decode
from prompt_tuning.decoding.interface import TokensToLogits
from prompt_tuning.decoding.model_adapter import make_tokens_to_logits

__all__ = ["BeamSearchOutput", "DecodingConfig", "GreedyOutput", "TokensToLogits", "beam_search",
           "brevity_penalty", "generate", "greedy_decode", "make_tokens_to_logits"]
