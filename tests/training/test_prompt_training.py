"""Prompt tuning end to end on tiny models: only the prompt changes, and it learns."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from prompt_tuning.model import T5Config, Transformer, init_params, param_count
from prompt_tuning.prompts import Prompt
from prompt_tuning.training import optim, step as step_lib, trainable

CONFIG = T5Config(vocab_size=64, emb_dim=64, num_heads=4, num_encoder_layers=2,
                  num_decoder_layers=2, head_dim=16, mlp_dim=64)
PROMPT_LENGTH = 20


def _uniform(rng, shape, dtype=jnp.float32):
    return jax.random.uniform(rng, shape, dtype, -0.5, 0.5)


def _setup(seed=0, config=CONFIG):
    model = Transformer(config, prompt=Prompt(PROMPT_LENGTH, initializer=_uniform))
    params = init_params(model, jax.random.PRNGKey(seed))
    trained, frozen = trainable.split(params, trainable.trainable_paths(params))
    return model, params, trained, frozen


def _synthetic_batch(rng, n):
    """Label 1 iff the input's tokens come from [10, 37); the target is token 5 or 6, then EOS."""
    labels = rng.integers(0, 2, n)
    tokens = np.where(labels[:, None] == 1, rng.integers(10, 37, (n, 12)),
                      rng.integers(37, 64, (n, 12)))
    lengths = rng.integers(6, 13, n)
    tokens[np.arange(12)[None, :] >= lengths[:, None]] = 0  # padded inputs
    targets = np.stack([np.where(labels == 1, 5, 6), np.ones(n, int)], axis=1)
    batch = dict(encoder_input_tokens=tokens, decoder_target_tokens=targets,
                 decoder_input_tokens=np.concatenate([np.zeros((n, 1), int), targets[:, :1]], 1),
                 decoder_loss_weights=np.ones_like(targets))
    return {k: jnp.asarray(v, jnp.int32) for k, v in batch.items()}, labels


def _accuracy(model, params, rng):
    batch, labels = _synthetic_batch(rng, 256)
    logits = model.apply({"params": params}, batch["encoder_input_tokens"],
                         batch["decoder_input_tokens"], batch["decoder_target_tokens"])
    predicted = np.where(logits[:, 0, 5] > logits[:, 0, 6], 1, 0)  # rank classification
    return float((predicted == labels).mean())


def test_prompt_learns_a_task_the_frozen_model_cannot_do():
    model, params, trained, frozen = _setup()
    optimizer = optim.adafactor()
    state = step_lib.TrainState.create(trained, optimizer)
    train_step = jax.jit(step_lib.make_train_step(model, optimizer))
    rng = np.random.default_rng(0)
    before = _accuracy(model, params, np.random.default_rng(1))
    losses = []
    for i in range(400):
        batch, _ = _synthetic_batch(rng, 32)
        state, metrics = train_step(state, frozen, batch, jax.random.PRNGKey(i))
        losses.append(float(metrics["loss"] / metrics["num_tokens"]))
    after = _accuracy(model, trainable.merge(state.params, frozen), np.random.default_rng(1))
    assert before < 0.7, before
    assert after > 0.9, after
    assert np.mean(losses[:10]) > 2.0 and np.mean(losses[-20:]) < 0.8, (losses[:10], losses[-20:])


def test_only_the_prompt_changes_and_frozen_params_stay_bitwise_equal():
    model, params, trained, frozen = _setup()
    optimizer = optim.adafactor()
    state = step_lib.TrainState.create(trained, optimizer)
    train_step = jax.jit(step_lib.make_train_step(model, optimizer))
    rng = np.random.default_rng(0)
    for i in range(5):
        state, _ = train_step(state, frozen, _synthetic_batch(rng, 8)[0], jax.random.PRNGKey(i))
    assert list(state.params) == ["prompt/prompt"]
    assert not np.array_equal(state.params["prompt/prompt"], params["prompt"]["prompt"])
    merged = trainable.flatten(trainable.merge(state.params, frozen))
    original = trainable.flatten(params)
    for path, value in original.items():
        if path != "prompt/prompt":
            np.testing.assert_array_equal(np.asarray(merged[path]), np.asarray(value), err_msg=path)
    # Optimizer state covers the prompt only: one second-moment array the size of the prompt
    # (unfactored), plus one-element placeholders and counters.
    leaves = jax.tree.leaves(state.opt_state)
    assert [x.size for x in leaves if x.size > 1] == [PROMPT_LENGTH * CONFIG.emb_dim]
    assert sum(x.size for x in leaves) < PROMPT_LENGTH * CONFIG.emb_dim + 8


def test_compiled_step_allocates_no_gradients_for_frozen_weights():
    config = CONFIG.replace(vocab_size=4096, mlp_dim=512)  # frozen weights dominate memory
    model, params, trained, frozen = _setup(config=config)
    batch, _ = _synthetic_batch(np.random.default_rng(0), 8)
    prompt_opt = optim.adafactor()
    prompt_state = step_lib.TrainState.create(trained, prompt_opt)
    prompt_step = jax.jit(step_lib.make_train_step(model, prompt_opt))
    prompt_mem = prompt_step.lower(prompt_state, frozen, batch, jax.random.PRNGKey(0)
                                   ).compile().memory_analysis()
    # Full fine-tuning of the same model, for comparison: everything is "trainable".
    all_flat = trainable.flatten(params)
    full_opt = optim.adafactor()
    full_state = step_lib.TrainState.create(all_flat, full_opt)
    full_step = jax.jit(step_lib.make_train_step(model, full_opt))
    full_mem = full_step.lower(full_state, {}, batch, jax.random.PRNGKey(0)
                               ).compile().memory_analysis()
    frozen_bytes = 4 * param_count(frozen)
    # Full fine-tuning needs at least a gradient per frozen weight on top of the prompt step.
    assert full_mem.temp_size_in_bytes + full_mem.output_size_in_bytes >= (
        prompt_mem.temp_size_in_bytes + prompt_mem.output_size_in_bytes + frozen_bytes)
    assert prompt_mem.output_size_in_bytes < frozen_bytes / 10


def test_gradient_reaches_the_prompt_and_padding_stays_masked():
    model, params, trained, frozen = _setup()
    batch, _ = _synthetic_batch(np.random.default_rng(0), 4)

    def loss(prompt_params, frozen_params):
        logits = model.apply({"params": trainable.merge(prompt_params, frozen_params)},
                             batch["encoder_input_tokens"], batch["decoder_input_tokens"],
                             batch["decoder_target_tokens"])
        return optax.softmax_cross_entropy_with_integer_labels(
            logits, batch["decoder_target_tokens"]).sum()

    grad = jax.grad(loss)(trained, frozen)["prompt/prompt"]
    assert grad.shape == (PROMPT_LENGTH, CONFIG.emb_dim)
    assert np.all(np.abs(np.asarray(grad)).sum(axis=-1) > 0)  # every prompt row is attended
    encoded, mask = model.apply({"params": params}, batch["encoder_input_tokens"],
                                method=Transformer.encode)
    assert encoded.shape[1] == PROMPT_LENGTH + 12
    np.testing.assert_array_equal(
        np.asarray(mask), np.concatenate([np.ones((4, PROMPT_LENGTH), bool),
                                          np.asarray(batch["encoder_input_tokens"] > 0)], 1))
    # The padding id's embedding row cannot reach any real encoder position: padding is masked.
    changed = jax.tree.map(lambda x: x, params)
    changed["token_embedder"]["embedding"] = params["token_embedder"]["embedding"].at[0].add(3.0)
    encoded_changed, _ = model.apply({"params": changed}, batch["encoder_input_tokens"],
                                     method=Transformer.encode)
    valid = np.asarray(mask)
    np.testing.assert_allclose(np.asarray(encoded_changed)[valid], np.asarray(encoded)[valid],
                               atol=1e-5)
    assert not np.allclose(np.asarray(encoded_changed)[~valid], np.asarray(encoded)[~valid])


def test_trainable_regex_errors():
    _, params, _, _ = _setup()
    with pytest.raises(ValueError, match="match no parameter"):
        trainable.trainable_paths(params, ["encoder/prompt/.*"])
    with pytest.raises(ValueError, match="match every parameter"):
        trainable.trainable_paths(params, [".*"])
    with pytest.raises(ValueError, match="Bad trainable-parameter regex"):
        trainable.trainable_paths(params, ["prompt/("])


@pytest.mark.parametrize("length", [0, -3])
def test_prompt_length_must_be_positive(length):
    model = Transformer(CONFIG, prompt=Prompt(length, initializer=_uniform))
    with pytest.raises(ValueError, match="Prompt length must be a positive integer"):
        init_params(model, jax.random.PRNGKey(0))
