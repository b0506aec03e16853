"""Greedy decoding: the argmax token at every step, as one `lax.while_loop`."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from prompt_tuning.decoding.interface import (TokensToLogits, check_positive, check_token_id,
                                              next_token_log_probs)

Array = jax.Array


class GreedyOutput(NamedTuple):
    """What `greedy_decode` returns (a tuple, so `tokens, log_probs = ...` works).

    Attributes:
      tokens: [batch, max_decode_length] int32 decoded ids, without the start token; 0 after EOS.
      log_probs: [batch] float32 sum of the chosen tokens' log-probabilities, EOS included.
    """

    tokens: Array
    log_probs: Array


class _State(NamedTuple):
    step: Array       # int32 scalar: the position being decoded.
    buffer: Array     # [batch, max_decode_length + 1] int32: start id, then decoded ids.
    done: Array       # [batch] bool: EOS already produced.
    log_probs: Array  # [batch] float32
    cache: Any        # the callback's cache (None without one)


def greedy_decode(tokens_to_logits: TokensToLogits, batch_size: int, max_decode_length: int,
                  eos_id: int = 1, cache: Any = None) -> GreedyOutput:
    """Decodes `batch_size` sequences greedily, T5 style (start id 0, stop at `eos_id`).

    The loop stops as soon as every row has produced EOS, so short outputs are cheap; the
    output shape is static either way.

    Args:
      tokens_to_logits: see `TokensToLogits`; called with `[batch_size, max_decode_length]`
        (and the cache, when there is one: `CachedTokensToLogits`).
      batch_size: number of sequences.
      max_decode_length: tokens to decode per sequence, EOS included.
      eos_id: the end-of-sequence id.
      cache: the initial cache of a `CachedTokensToLogits` callback (None: no cache).
    Returns:
      `GreedyOutput(tokens [batch, max_decode_length] int32, log_probs [batch] float32)`.
    """
    check_positive("batch_size", batch_size)
    check_positive("max_decode_length", max_decode_length)
    check_token_id("eos_id", eos_id)

    def cond(state: _State) -> Array:
        return (state.step < max_decode_length) & ~jnp.all(state.done)

    def body(state: _State) -> _State:
        log_probs, cache = next_token_log_probs(tokens_to_logits,
                                                state.buffer[:, :max_decode_length], state.step,
                                                state.cache)
        token = jnp.argmax(log_probs, axis=-1).astype(jnp.int32)              # [batch]
        chosen = jnp.take_along_axis(log_probs, token[:, None], axis=-1)[:, 0]
        # Finished rows keep padding with 0 and stop accumulating probability.
        token = jnp.where(state.done, 0, token)
        buffer = lax.dynamic_update_index_in_dim(state.buffer, token[:, None],
                                                 state.step + 1, axis=1)
        return _State(step=state.step + 1, buffer=buffer,
                      done=state.done | (token == eos_id),
                      log_probs=state.log_probs + jnp.where(state.done, 0.0, chosen),
                      cache=cache)

    init = _State(step=jnp.array(0, jnp.int32),
                  buffer=jnp.zeros((batch_size, max_decode_length + 1), jnp.int32),
                  done=jnp.zeros((batch_size,), bool),
                  log_probs=jnp.zeros((batch_size,), jnp.float32), cache=cache)
    final = lax.while_loop(cond, body, init)
    return GreedyOutput(tokens=final.buffer[:, 1:], log_probs=final.log_probs)
