"""Decoding our real (tiny, random) T5 through `make_tokens_to_logits`, checked by teacher forcing."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prompt_tuning.decoding import beam_search, greedy_decode, make_tokens_to_logits
from prompt_tuning.model import T5Config, Transformer
from prompt_tuning.model.params import init_params

# A small vocabulary so that EOS is a likely token even for random weights.
CONFIG = T5Config(vocab_size=16, emb_dim=32, num_heads=2, num_encoder_layers=2,
                  num_decoder_layers=2, head_dim=16, mlp_dim=64, relpos_num_buckets=16,
                  relpos_max_distance=20)
MODEL = Transformer(CONFIG)
LENGTH = 8
EOS = 1


@pytest.fixture(scope="module")
def setup():
    params = jax.jit(init_params, static_argnums=0)(MODEL, jax.random.PRNGKey(1))
    rng = np.random.default_rng(1)
    inputs = rng.integers(2, CONFIG.vocab_size, size=(6, 9))
    inputs[3:, 5:] = 0  # some padded examples
    return params, jnp.asarray(inputs, jnp.int32)


@functools.partial(jax.jit, static_argnames=("num_beams", "alpha", "method"))
def _decode(params, inputs, method, num_beams=1, alpha=0.6):
    encoded, mask = MODEL.apply({"params": params}, inputs, method=Transformer.encode)
    fn = make_tokens_to_logits(MODEL, params, encoded, mask, num_beams=num_beams)
    if method == "greedy":
        return greedy_decode(fn, inputs.shape[0], LENGTH)
    return beam_search(fn, inputs.shape[0], LENGTH, num_beams=num_beams, alpha=alpha)


@jax.jit
def _teacher_forced(params, inputs, targets):
    """[batch, length] targets -> ([batch, length] argmax, [batch, length] target log-probs)."""
    decoder_inputs = jnp.pad(targets[:, :-1], ((0, 0), (1, 0)))
    logits = MODEL.apply({"params": params}, inputs, decoder_inputs)  # causal mask only
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return (jnp.argmax(logits, axis=-1),
            jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0])


def _up_to_eos(tokens):
    """[batch, length] -> bool mask of positions up to and including the first EOS."""
    ended_before = np.cumsum(tokens == EOS, axis=1) - (tokens == EOS)
    return ended_before == 0


def test_greedy_equals_argmax_of_teacher_forcing_on_its_own_output(setup):
    params, inputs = setup
    tokens, log_probs = _decode(params, inputs, "greedy")
    tokens = np.asarray(tokens)
    assert tokens.shape == (6, LENGTH) and tokens.dtype == np.int32
    argmax, token_log_probs = _teacher_forced(params, inputs, tokens)
    valid = _up_to_eos(tokens)
    np.testing.assert_array_equal(np.asarray(argmax)[valid], tokens[valid])
    np.testing.assert_allclose(log_probs, np.where(valid, token_log_probs, 0).sum(1),
                               rtol=1e-5, atol=1e-5)
    ended = (tokens == EOS).any(1)
    assert ended.any() and not ended.all()  # both paths are exercised
    np.testing.assert_array_equal(tokens[~valid], 0)  # padding after EOS


def test_one_beam_without_penalty_is_greedy(setup):
    params, inputs = setup
    tokens, log_probs = _decode(params, inputs, "greedy")
    sequences, scores = _decode(params, inputs, "beam", num_beams=1, alpha=0.0)
    assert sequences.shape == (6, 1, LENGTH) and scores.shape == (6, 1)
    np.testing.assert_array_equal(sequences[:, 0], tokens)
    np.testing.assert_allclose(scores[:, 0], log_probs, rtol=1e-5, atol=1e-5)


def test_beam_scores_equal_teacher_forced_scores_and_are_sorted(setup):
    params, inputs = setup
    beams, alpha = 4, 0.6
    sequences, scores = map(np.asarray, _decode(params, inputs, "beam", num_beams=beams,
                                                alpha=alpha))
    assert sequences.shape == (6, beams, LENGTH) and scores.shape == (6, beams)
    flat = sequences.reshape(-1, LENGTH)
    _, token_log_probs = _teacher_forced(params, jnp.repeat(inputs, beams, axis=0), flat)
    valid = _up_to_eos(flat)
    log_prob = np.where(valid, token_log_probs, 0).sum(1)
    finished = (flat == EOS).any(1)
    length = valid.sum(1)
    expected = np.where(finished, log_prob / ((5 + length) / 6) ** alpha, log_prob)
    real = np.isfinite(scores.reshape(-1))
    np.testing.assert_allclose(scores.reshape(-1)[real], expected[real], rtol=1e-4, atol=1e-5)
    assert np.all(scores[:, :-1] >= scores[:, 1:])  # best first (-inf: empty slots last)
    assert finished.reshape(6, beams)[:, 0].any()  # some examples end with EOS


def test_callback_rejects_a_batch_that_does_not_match_the_encoder(setup):
    params, _ = setup
    encoded, mask = jnp.zeros((6, 9, CONFIG.emb_dim)), jnp.ones((6, 9), bool)
    fn = make_tokens_to_logits(MODEL, params, encoded, mask)
    with pytest.raises(ValueError, match="has 24 rows but the encoder outputs have 6"):
        beam_search(fn, 6, LENGTH, num_beams=4)
