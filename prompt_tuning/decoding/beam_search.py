"""Beam search with T5X's semantics (`t5x.decoding.beam_search`), written for our callback.

Per example the search keeps `num_beams` *live* beams (no EOS yet, ranked by summed
log-probability) and `num_beams` *finished* slots (ended with EOS, ranked by
`log_prob / brevity_penalty(alpha, length)`). Each step:

1. every live beam is extended by every token; the best `2 * num_beams` extensions by summed
   log-probability are kept, so that even if `num_beams` of them end in EOS, `num_beams`
   others can stay live;
2. the best `num_beams` of those not ending in EOS become the new live beams;
3. those ending in EOS are scored and merged with the finished slots, keeping the best.

The search stops at `max_decode_length` or, earlier, once every finished slot is filled and
no live beam can still beat the worst finished one: log-probabilities only fall, so a live
beam's best possible score is its current log-probability over the largest penalty it could
still get. If an example finishes nothing, its live beams are returned with their raw
log-probabilities (as T5X does).

Unlike T5X, outputs are sorted best-first, and impossible beams (e.g. from the initial
state, or from tokens whose logit is -inf) carry -inf rather than T5X's -1e7, so a tiny
vocabulary cannot let a placeholder beam be counted as finished.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from prompt_tuning.decoding.interface import (TokensToLogits, check_positive, check_token_id,
                                              next_token_log_probs)

Array = jax.Array


class BeamSearchOutput(NamedTuple):
    """What `beam_search` returns (a tuple, so `sequences, scores = ...` works).

    Attributes:
      sequences: [batch, num_beams, max_decode_length] int32, best first, without the start
        token; 0 after EOS. `sequences[:, 0]` is the prediction.
      scores: [batch, num_beams] float32, best first: `log_prob / brevity_penalty` of finished
        beams (-inf for empty slots), or raw log-probs of live beams if none finished.
    """

    sequences: Array
    scores: Array


class _State(NamedTuple):
    step: Array             # int32 scalar
    live_seqs: Array        # [batch, beams, max_decode_length + 1] int32, start id first
    live_log_probs: Array   # [batch, beams] float32, best first; -inf: no such beam
    finished_seqs: Array    # [batch, beams, max_decode_length + 1] int32
    finished_scores: Array  # [batch, beams] float32, best first; -inf: empty slot
    cache: Any              # the callback's cache, rows of the live beams (None without one)


def gather_rows(cache: Any, rows: Array) -> Any:
    """Every leaf of `cache` with its leading axis (batch * beams) gathered by `rows`."""
    return jax.tree.map(lambda x: jnp.take(x, rows, axis=0), cache)


def brevity_penalty(alpha: float, length: Array | int) -> Array:
    """T5X's length normalisation `((5 + length) / 6) ** alpha`; `length` counts EOS."""
    return jnp.power((5.0 + jnp.asarray(length, jnp.float32)) / 6.0, alpha)


def _gather_beams(x: Array, indices: Array) -> Array:
    """[batch, old_beams, ...] gathered by [batch, new_beams] -> [batch, new_beams, ...]."""
    return jnp.take_along_axis(x, indices.reshape(indices.shape + (1,) * (x.ndim - 2)), axis=1)


def _top(scores: Array, k: int, *arrays: Array) -> tuple[Array, ...]:
    """The `k` best rows of `scores` [batch, n] (sorted, best first) and of each array."""
    top_scores, indices = lax.top_k(scores, k)
    return (top_scores,) + tuple(_gather_beams(a, indices) for a in arrays)


def _extend(state: _State, log_probs: Array, num_beams: int
            ) -> tuple[Array, Array, Array, Array]:
    """Best `2 * num_beams` one-token extensions of the live beams.

    Args:
      log_probs: [batch, beams, vocab] next-token log-probabilities.
    Returns:
      ([batch, 2*beams] summed log-probs, [batch, 2*beams, length] sequences with the new
      token written at `step + 1`, [batch, 2*beams] the new tokens, [batch, 2*beams] the live
      beam each extends).
    """
    batch, beams, vocab = log_probs.shape
    if 2 * num_beams > beams * vocab:
        raise ValueError(f"beam search needs vocab >= 2, got logits with vocab {vocab}.")
    totals = (state.live_log_probs[:, :, None] + log_probs).reshape(batch, beams * vocab)
    top_log_probs, flat_indices = lax.top_k(totals, 2 * num_beams)
    tokens = (flat_indices % vocab).astype(jnp.int32)
    parents = (flat_indices // vocab).astype(jnp.int32)
    seqs = _gather_beams(state.live_seqs, parents)
    seqs = lax.dynamic_update_index_in_dim(seqs, tokens[:, :, None], state.step + 1, axis=2)
    return top_log_probs, seqs, tokens, parents


def _step(state: _State, tokens_to_logits: TokensToLogits, num_beams: int, alpha: float,
          eos_id: int, max_decode_length: int,
          reorder_cache: Callable[[Any, Array], Any]) -> _State:
    batch = state.live_seqs.shape[0]
    flat_inputs = state.live_seqs[:, :, :max_decode_length].reshape(batch * num_beams, -1)
    log_probs, cache = next_token_log_probs(tokens_to_logits, flat_inputs, state.step,
                                            state.cache)
    cand_log_probs, cand_seqs, cand_tokens, cand_parents = _extend(
        state, log_probs.reshape(batch, num_beams, -1), num_beams)
    # -inf candidates extend placeholder beams: they can neither live nor finish.
    ends = (cand_tokens == eos_id) & jnp.isfinite(cand_log_probs)
    live_log_probs, live_seqs, live_parents = _top(jnp.where(ends, -jnp.inf, cand_log_probs),
                                                   num_beams, cand_seqs, cand_parents)
    if cache is not None:  # each new live beam continues from its parent's cache rows
        rows = (jnp.arange(batch)[:, None] * num_beams + live_parents).reshape(-1)
        cache = reorder_cache(cache, rows)
    cand_scores = jnp.where(ends, cand_log_probs / brevity_penalty(alpha, state.step + 1),
                            -jnp.inf)
    # Old finished beams come first, so on equal scores the earlier (shorter) one is kept.
    finished_scores, finished_seqs = _top(
        jnp.concatenate([state.finished_scores, cand_scores], axis=1), num_beams,
        jnp.concatenate([state.finished_seqs, cand_seqs], axis=1))
    return _State(step=state.step + 1, live_seqs=live_seqs, live_log_probs=live_log_probs,
                  finished_seqs=finished_seqs, finished_scores=finished_scores, cache=cache)


def _should_continue(state: _State, alpha: float, max_decode_length: int) -> Array:
    # A live beam that has decoded `step` tokens ends with length in [step + 1, max]; with
    # log-probs <= 0 its best score divides by the largest penalty over that range.
    largest_penalty = jnp.maximum(brevity_penalty(alpha, state.step + 1),
                                  brevity_penalty(alpha, max_decode_length))
    best_live = state.live_log_probs[:, 0] / largest_penalty               # [batch]
    worst_finished = state.finished_scores[:, -1]                          # -inf if a slot is empty
    settled = (worst_finished > best_live) | jnp.isneginf(best_live)
    return (state.step < max_decode_length) & ~jnp.all(settled)


def beam_search(tokens_to_logits: TokensToLogits, batch_size: int, max_decode_length: int,
                num_beams: int = 4, alpha: float = 0.6, eos_id: int = 1, cache: Any = None,
                reorder_cache: Callable[[Any, Array], Any] = gather_rows) -> BeamSearchOutput:
    """T5X-style beam search from the start id 0.

    Args:
      tokens_to_logits: see `TokensToLogits`; called with
        `[batch_size * num_beams, max_decode_length]` (beams of one example are adjacent).
      batch_size: number of examples.
      max_decode_length: tokens per sequence, EOS included.
      num_beams: beams per example (T5X's `num_decodes`).
      alpha: brevity-penalty exponent; 0 ranks finished beams by raw log-probability.
      eos_id: the end-of-sequence id.
      cache: the initial cache of a `CachedTokensToLogits` callback, rows `batch * num_beams`
        (None: no cache).
      reorder_cache: `(cache, rows [batch * num_beams]) -> cache` with each row taken from row
        `rows[i]`, applied when beams are re-selected (default: every leaf's leading axis).
    Returns:
      `BeamSearchOutput(sequences [batch, num_beams, max_decode_length] int32,
      scores [batch, num_beams] float32)`, best first.
    """
    check_positive("batch_size", batch_size)
    check_positive("max_decode_length", max_decode_length)
    check_positive("num_beams", num_beams)
    check_token_id("eos_id", eos_id)
    shape = (batch_size, num_beams)
    seqs = jnp.zeros(shape + (max_decode_length + 1,), jnp.int32)
    # Only beam 0 exists at first; the others are placeholders that no candidate can beat.
    init = _State(step=jnp.array(0, jnp.int32), live_seqs=seqs,
                  live_log_probs=jnp.full(shape, -jnp.inf).at[:, 0].set(0.0),
                  finished_seqs=seqs, finished_scores=jnp.full(shape, -jnp.inf), cache=cache)
    final = lax.while_loop(
        lambda s: _should_continue(s, alpha, max_decode_length),
        lambda s: _step(s, tokens_to_logits, num_beams, alpha, eos_id, max_decode_length,
                        reorder_cache),
        init)
    any_finished = jnp.isfinite(final.finished_scores[:, 0])               # [batch]
    sequences = jnp.where(any_finished[:, None, None], final.finished_seqs, final.live_seqs)
    scores = jnp.where(any_finished[:, None], final.finished_scores, final.live_log_probs)
    # Empty slots and placeholder beams hold whatever lost the last top-k: show zeros.
    sequences = jnp.where(jnp.isfinite(scores)[:, :, None], sequences[:, :, 1:], 0)
    return BeamSearchOutput(sequences=sequences, scores=scores)
