"""Decoding with a key/value cache gives the tokens and scores of recomputing the decoder over
the whole buffer at every step: greedy and beam search, 64-token outputs, padded inputs, with a
prompt table (beams share their example's encoder keys and values)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prompt_tuning.decoding import (beam_search, decoding_cache_rows, greedy_decode,
                                    make_cached_step, make_tokens_to_logits)
from prompt_tuning.model import T5Config, Transformer, init_params
from prompt_tuning.prompts import PromptTable, seam

# Vocabulary 64: EOS (1) is rare enough that most rows decode all 64 positions, common enough
# that some stop early.
CONFIG = T5Config(vocab_size=64, emb_dim=32, num_heads=2, num_encoder_layers=2,
                  num_decoder_layers=3, head_dim=16, mlp_dim=64, relpos_num_buckets=16,
                  relpos_max_distance=40)
LENGTH = 64


@pytest.fixture(scope="module")
def setup():
    model = seam.prompted_model(CONFIG, PromptTable(2, 3))
    params = init_params(Transformer(CONFIG), jax.random.PRNGKey(4))
    table = np.random.default_rng(0).normal(size=(2, 3, CONFIG.emb_dim)).astype(np.float32)
    params = seam.with_prompt(params, table)
    rng = np.random.default_rng(2)
    inputs = rng.integers(2, CONFIG.vocab_size, size=(5, 11)).astype(np.int32)
    inputs[2:, 6:] = 0
    prompt_ids = np.array([0, 1, 1, 0, 1], np.int32)
    return model, params, jnp.asarray(inputs), jnp.asarray(prompt_ids)


@functools.partial(jax.jit, static_argnames=("model", "method", "num_beams", "cached"))
def _decode(model, params, inputs, prompt_ids, method, num_beams, cached):
    encoded, mask = model.apply({"params": params}, inputs, prompt_ids, method=Transformer.encode)
    batch = inputs.shape[0]
    if cached:
        fn, cache = make_cached_step(model, params, encoded, mask, LENGTH, num_beams)
    else:
        fn, cache = make_tokens_to_logits(model, params, encoded, mask, num_beams), None
    if method == "greedy":
        return greedy_decode(fn, batch, LENGTH, cache=cache)
    return beam_search(fn, batch, LENGTH, num_beams=num_beams, cache=cache,
                       reorder_cache=decoding_cache_rows)


def test_greedy_cached_equals_recomputed(setup):
    model, params, inputs, prompt_ids = setup
    cached = _decode(model, params, inputs, prompt_ids, "greedy", 1, True)
    full = _decode(model, params, inputs, prompt_ids, "greedy", 1, False)
    np.testing.assert_array_equal(np.asarray(cached.tokens), np.asarray(full.tokens))
    np.testing.assert_allclose(np.asarray(cached.log_probs), np.asarray(full.log_probs),
                               rtol=1e-5, atol=1e-4)
    assert (np.asarray(cached.tokens)[:, -1] != 0).any(), "no row decoded all 64 positions"


def test_beam_search_cached_equals_recomputed(setup):
    model, params, inputs, prompt_ids = setup
    cached = _decode(model, params, inputs, prompt_ids, "beam", 3, True)
    full = _decode(model, params, inputs, prompt_ids, "beam", 3, False)
    np.testing.assert_array_equal(np.asarray(cached.sequences), np.asarray(full.sequences))
    np.testing.assert_allclose(np.asarray(cached.scores), np.asarray(full.scores),
                               rtol=1e-5, atol=1e-4)
    # The beams of an example really differ (the cache rows were reordered, not shared).
    sequences = np.asarray(cached.sequences)
    assert any(len({tuple(b) for b in example}) > 1 for example in sequences)


@pytest.mark.parametrize("method, num_beams", [("greedy", 1), ("beam", 3)])
def test_scanned_layers_decode_the_same(setup, method, num_beams):
    """With `scan_layers` the cache is stacked over the layers (and beam search reorders its
    rows on axis 1): the same tokens and scores as the per-layer model."""
    from prompt_tuning.model import scanned_params  # pylint: disable=import-outside-toplevel

    model, params, inputs, prompt_ids = setup
    scanned_config = CONFIG.replace(scan_layers=True)
    scanned_model = seam.prompted_model(scanned_config, PromptTable(2, 3))
    stacked = scanned_params.stack_layers(params, scanned_config)
    a = _decode(model, params, inputs, prompt_ids, method, num_beams, True)
    b = _decode(scanned_model, stacked, inputs, prompt_ids, method, num_beams, True)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if jnp.issubdtype(x.dtype, jnp.integer):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        else:
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-4)
