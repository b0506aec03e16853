"""Microbatching (NUM_MICROBATCHES): the same update as the whole batch, in slices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prompt_tuning.model import T5Config, Transformer, init_params
from prompt_tuning.prompts import Prompt
from prompt_tuning.training import losses, optim, step as step_lib, trainable

CONFIG = T5Config(vocab_size=64, emb_dim=32, num_heads=4, num_encoder_layers=1,
                  num_decoder_layers=1, head_dim=8, mlp_dim=64)


def _uniform(rng, shape, dtype=jnp.float32):
    return jax.random.uniform(rng, shape, dtype, -0.5, 0.5)


def _batch(seed, n=8):
    """Targets of varied lengths and weights, so the token count differs between rows."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(2, 64, (n, 6))
    targets = rng.integers(2, 64, (n, 4))
    weights = (np.arange(4)[None, :] < rng.integers(1, 5, n)[:, None]).astype(np.int32)
    targets = targets * weights
    inputs = np.concatenate([np.zeros((n, 1), int), targets[:, :-1]], 1)
    return {"encoder_input_tokens": jnp.asarray(tokens, jnp.int32),
            "decoder_input_tokens": jnp.asarray(inputs, jnp.int32),
            "decoder_target_tokens": jnp.asarray(targets, jnp.int32),
            "decoder_loss_weights": jnp.asarray(weights, jnp.int32)}


def _train(num_microbatches, loss_config, steps=3):
    model = Transformer(CONFIG, prompt=Prompt(5, initializer=_uniform))
    params = init_params(model, jax.random.PRNGKey(0))
    trained, frozen = trainable.split(params, trainable.trainable_paths(params))
    tx = optim.adafactor(optim.AdafactorConfig(learning_rate=0.01))
    state = step_lib.TrainState.create(trained, tx)
    step = jax.jit(step_lib.make_train_step(model, tx, loss_config, num_microbatches))
    history = [np.asarray(trained["prompt/prompt"])]
    for i in range(steps):
        state, metrics = step(state, frozen, _batch(i), jax.random.PRNGKey(i))
        history.append({k: float(v) for k, v in metrics.items()})
    return np.asarray(state.params["prompt/prompt"]), history[1:], history[0]


@pytest.mark.parametrize("factor", [None, losses.NUM_REAL_TARGET_TOKENS])
def test_microbatches_give_the_whole_batch_update(factor):
    loss_config = losses.LossConfig(loss_normalizing_factor=factor)
    whole, whole_history, start = _train(1, loss_config)
    for m in (2, 4, 8):
        sliced, history, _ = _train(m, loss_config)
        np.testing.assert_allclose(sliced, whole, atol=2e-6, err_msg=str(m))
        for a, b in zip(history, whole_history):
            assert a.keys() == b.keys()
            for key in ("loss", "cross_entropy", "z_loss", "num_tokens", "grad_norm"):
                np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=f"{m} {key}")
    assert np.abs(whole - start).mean() > 1e-3  # it trained


def test_the_batch_must_split_evenly():
    model = Transformer(CONFIG, prompt=Prompt(5, initializer=_uniform))
    with pytest.raises(ValueError, match="num_microbatches"):
        step_lib.make_train_step(model, optim.adafactor(), num_microbatches=0)
