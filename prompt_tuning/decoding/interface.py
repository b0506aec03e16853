"""The contract between the decoding loops and a model: the `TokensToLogits` callback.

Decoding keeps a fixed-size token buffer `[batch', max_decode_length]` whose position 0 holds
the decoder start id (0, as in T5) and whose position `t + 1` receives the token chosen at step
`t`. At step `t` the loop hands the whole buffer to the callback, which returns the logits for
position `t` only. Positions after `t` still hold 0 (or stale tokens); a causal decoder cannot
see them, so they do not change position `t`'s logits. Everything has static shapes, so a loop
over steps is one `lax.while_loop` under `jax.jit`.

Two kinds of callback fit the loops:
* `TokensToLogits`, `(tokens, step) -> logits`: full recompute, each step re-runs the decoder
  over all `max_decode_length` positions (O(max_decode_length^2) work per sequence);
* `CachedTokensToLogits`, `(tokens, step, cache) -> (logits, cache)`, given with an initial
  `cache` pytree the loop carries: the callback reads only `tokens[:, step]` and keeps the
  earlier positions' keys and values in the cache. Beam search reorders the cache rows with its
  `reorder_cache(cache, rows)` hook when beams are re-selected.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp

Array = jax.Array


class TokensToLogits(Protocol):
    """Next-token logits from a full decoder-input buffer.

    Args:
      decoder_input_tokens: [batch', max_decode_length] int32; position 0 is the start id 0
        and positions `<= step` hold the tokens decoded so far (shifted right by one).
      step: int32 scalar, the position whose logits are wanted.
    Returns:
      [batch', vocab] float logits for position `step` (any normalisation: the loops apply
      `log_softmax`). `batch'` is `batch` for greedy decoding and `batch * num_beams`
      (beam-major within each example: rows `i * num_beams + j`) for beam search.
    """

    def __call__(self, decoder_input_tokens: Array, step: Array) -> Array:
        ...


class CachedTokensToLogits(Protocol):
    """Next-token logits with a cache of the earlier positions.

    Args:
      decoder_input_tokens: as for `TokensToLogits` (only position `step` is new).
      step: int32 scalar, the position whose logits are wanted.
      cache: the loop's cache pytree, as returned by the previous call.
    Returns:
      ([batch', vocab] float logits for position `step`, the updated cache).
    """

    def __call__(self, decoder_input_tokens: Array, step: Array,
                 cache: Any) -> tuple[Array, Any]:
        ...


def check_positive(name: str, value: int) -> None:
    """Raises `ValueError` unless `value` is a positive Python int (shapes must be static)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


def check_token_id(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int token id, got {value!r}.")


def next_token_log_probs(tokens_to_logits: Any, tokens: Array, step: Array,
                         cache: Any = None) -> tuple[Array, Any]:
    """Calls the callback (with the cache if there is one), checks its shape, and normalises.

    Returns:
      ([batch', vocab] float32 log-probabilities, the updated cache or None).
    """
    if cache is None:
        logits = tokens_to_logits(tokens, step)
    else:
        logits, cache = tokens_to_logits(tokens, step, cache)
    if logits.ndim != 2 or logits.shape[0] != tokens.shape[0]:
        raise ValueError(f"tokens_to_logits must return [batch', vocab] = "
                         f"[{tokens.shape[0]}, vocab] logits, got shape {tuple(logits.shape)}.")
    return jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1), cache
