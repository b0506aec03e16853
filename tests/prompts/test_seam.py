"""The prompt seam end to end: `prompt_ids` travel from the batch through the train step, the
score step, both predictors and decoding, so a `PromptTable` is only a new module; the encoder's
layer hook; the placement chosen from gin."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prompt_tuning import decoding, runtime
from prompt_tuning.evaluation import predictors
from prompt_tuning.model import Transformer, init_params
from prompt_tuning.prompts import Prompt, PromptConfig, PromptTable, placements, seam
from prompt_tuning.training import losses, optim, step as step_lib, trainable
from tests.checkpoints import tiny

CONFIG = tiny.CONFIG
NUM_PROMPTS, LENGTH = 3, 4
PROMPT_IDS = np.array([2, 0, 1, 0, 2, 1], np.int32)


@pytest.fixture(scope="module")
def frozen_params():
    return init_params(CONFIG, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def table():
    """[NUM_PROMPTS, LENGTH, embed], rows clearly different from each other."""
    rng = np.random.default_rng(3)
    return rng.normal(0, 1.0, (NUM_PROMPTS, LENGTH, CONFIG.emb_dim)).astype(np.float32)


def _batch(n=len(PROMPT_IDS), seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.integers(2, CONFIG.vocab_size, (n, 7)).astype(np.int32)
    inputs[1, 4:] = 0  # padding
    targets = rng.integers(2, CONFIG.vocab_size, (n, 3)).astype(np.int32)
    targets[:, -1] = 1
    return {"encoder_input_tokens": inputs, "decoder_target_tokens": targets,
            "decoder_input_tokens": np.pad(targets[:, :-1], ((0, 0), (1, 0))),
            "decoder_loss_weights": np.ones_like(targets)}


def _rows(batch, rows):
    return {k: v[rows] for k, v in batch.items()}


def _single(frozen_params, table, row):
    """(model, params) with table row `row` as the one prompt."""
    model = seam.prompted_model(CONFIG, Prompt(LENGTH))
    return model, seam.with_prompt(frozen_params, table[row])


def _mixed(frozen_params, table):
    model = seam.prompted_model(CONFIG, PromptTable(NUM_PROMPTS, LENGTH))
    return model, seam.with_prompt(frozen_params, table)


def test_the_seam_scope_is_the_transformers_prompt_field(frozen_params):
    fields = {f.name for f in dataclasses.fields(Transformer)}
    assert seam.SCOPE in fields
    params = init_params(seam.prompted_model(CONFIG, Prompt(LENGTH)), jax.random.PRNGKey(1))
    assert seam.PATH in trainable.flatten(params)
    assert np.asarray(seam.prompt_value(params)).shape == (LENGTH, CONFIG.emb_dim)


def test_score_step_mixed_batch_equals_each_example_alone(frozen_params, table):
    batch = _batch()
    model, params = _mixed(frozen_params, table)
    mixed = jax.jit(runtime.make_score_step(model))(params, {**batch, "prompt_ids": PROMPT_IDS})
    for i, row in enumerate(PROMPT_IDS):
        alone_model, alone_params = _single(frozen_params, table, row)
        alone = runtime.make_score_step(alone_model)(alone_params, _rows(batch, [i]))
        # float32 on CPU: the same arithmetic in another batch layout, to rounding.
        np.testing.assert_allclose(mixed["token_log_probs"][i], alone["token_log_probs"][0],
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_generation_mixed_batch_equals_each_example_alone(frozen_params, table, method):
    batch = _batch()
    config = decoding.DecodingConfig(method=method, num_beams=2)
    model, params = _mixed(frozen_params, table)
    predict = jax.jit(predictors.generation_predictor(model, config, 5, eos_id=1))
    mixed = np.asarray(predict(params, {**batch, "prompt_ids": PROMPT_IDS}))
    for row in range(NUM_PROMPTS):
        alone_model, alone_params = _single(frozen_params, table, row)
        alone = predictors.generation_predictor(alone_model, config, 5, eos_id=1)
        chosen = np.flatnonzero(PROMPT_IDS == row)
        np.testing.assert_array_equal(np.asarray(alone(alone_params, _rows(batch, chosen))),
                                      mixed[chosen])
    # The rows really differ: one prompt for all gives other outputs somewhere.
    same_model, same_params = _single(frozen_params, table, 0)
    assert not np.array_equal(
        np.asarray(predictors.generation_predictor(same_model, config, 5, 1)(same_params, batch)),
        mixed)


def test_rank_classification_mixed_batch_equals_each_example_alone(frozen_params, table):
    batch = _batch()
    labels = np.array([[5, 1, 0], [6, 7, 1], [9, 1, 0]], np.int32)
    model, params = _mixed(frozen_params, table)
    mixed = predictors.rank_classification_predictor(model, labels)(
        params, {**batch, "prompt_ids": PROMPT_IDS})
    for i, row in enumerate(PROMPT_IDS):
        alone_model, alone_params = _single(frozen_params, table, row)
        alone = predictors.rank_classification_predictor(alone_model, labels)(
            alone_params, _rows(batch, [i]))
        np.testing.assert_array_equal(np.asarray(alone[0]), np.asarray(mixed[i]))


def test_train_step_on_a_mixed_batch(frozen_params, table):
    """The loss is the sum of each example's loss under its own prompt; only used rows move."""
    batch = {**_batch(), "prompt_ids": np.array([2, 0, 0, 2, 2, 0], np.int32)}  # row 1 unused
    model, params = _mixed(frozen_params, table)
    trained, frozen = trainable.split(params, trainable.trainable_paths(params))
    tx = optim.adafactor()
    state = step_lib.TrainState.create(trained, tx)
    new_state, metrics = jax.jit(step_lib.make_train_step(model, tx))(
        state, frozen, batch, jax.random.PRNGKey(0))

    total = 0.0
    for i, row in enumerate(batch["prompt_ids"]):
        alone_model, alone_params = _single(frozen_params, table, row)
        example = _rows({k: v for k, v in batch.items() if k != "prompt_ids"}, [i])
        logits = runtime.logits(alone_model, alone_params, example)
        loss, _ = losses.weighted_loss(logits, example["decoder_target_tokens"],
                                       example["decoder_loss_weights"])
        total += float(loss)
    assert CONFIG.dropout_rate == 0.0  # so the two layouts compute the same thing
    assert float(metrics["loss"]) == pytest.approx(total, rel=1e-5)
    new = np.asarray(new_state.params[seam.PATH])
    assert np.abs(new[0] - table[0]).max() > 0.1 and np.abs(new[2] - table[2]).max() > 0.1
    # The unused row gets no gradient: only the recipe's decoupled weight decay (1e-5) moves it.
    np.testing.assert_allclose(new[1], table[1] * (1 - optim.AdafactorConfig().weight_decay_rate),
                               rtol=1e-6)


def test_a_single_prompt_refuses_prompt_ids_and_a_table_needs_them(frozen_params, table):
    batch = _batch()
    single_model, single_params = _single(frozen_params, table, 0)
    with pytest.raises(ValueError, match="single prompt"):
        runtime.make_score_step(single_model)(single_params, {**batch, "prompt_ids": PROMPT_IDS})
    table_model, table_params = _mixed(frozen_params, table)
    with pytest.raises(ValueError, match="needs prompt_ids"):
        runtime.make_score_step(table_model)(table_params, batch)


def test_layer_hook_sees_every_encoder_layer_and_defaults_to_nothing(frozen_params):
    import flax.linen as nn  # pylint: disable=import-outside-toplevel

    calls = []

    class AddPerLayer(nn.Module):
        @nn.compact
        def __call__(self, x, mask, layer, prompt_ids=None):
            calls.append(layer)
            bias = self.param("bias", nn.initializers.constant(0.25), (CONFIG.emb_dim,))
            return x + (layer + 1) * bias

    class Identity(nn.Module):
        def __call__(self, x, mask, layer, prompt_ids=None):
            return x

    batch = _batch()
    args = (batch["encoder_input_tokens"], batch["decoder_input_tokens"],
            batch["decoder_target_tokens"])
    plain = Transformer(CONFIG).apply({"params": frozen_params}, *args)
    same = Transformer(CONFIG, layer_hook=Identity()).apply({"params": frozen_params}, *args)
    np.testing.assert_array_equal(np.asarray(plain), np.asarray(same))

    hooked_model = Transformer(CONFIG, layer_hook=AddPerLayer())
    params = init_params(hooked_model, jax.random.PRNGKey(0))
    assert sorted(params["layer_hook"]) == ["bias"]  # the hook's own scope, beside the model's
    calls.clear()
    hooked = hooked_model.apply({"params": {**frozen_params, "layer_hook": params["layer_hook"]}},
                                *args)
    assert calls == list(range(CONFIG.num_encoder_layers))
    assert not np.allclose(np.asarray(hooked), np.asarray(plain))


def test_placement_is_chosen_from_gin():
    import gin  # pylint: disable=import-outside-toplevel

    from prompt_tuning.cli import gin_config  # pylint: disable=import-outside-toplevel

    gin.clear_config(clear_constants=True)
    try:
        gin.parse_config("""
from __gin__ import dynamic_registration
from prompt_tuning.prompts import config as prompt_config
from prompt_tuning.prompts import placements
prompt_config.PromptConfig.length = 3
prompt_config.PromptConfig.placement = @placements.suffix
""")
        config = gin_config.build(PromptConfig)
    finally:
        gin.clear_config(clear_constants=True)
    assert config.placement is placements.suffix or config.placement.__name__ == "suffix"
    module = config.combiner(lambda rng, shape, dtype=jnp.float32: jnp.full(shape, 7.0, dtype))
    embedded = jnp.zeros((2, 5, 4))
    variables = module.init(jax.random.PRNGKey(0), embedded, jnp.ones((2, 5), bool))
    combined, mask = module.apply(variables, embedded, jnp.ones((2, 5), bool))
    assert combined.shape == (2, 8, 4) and mask.shape == (2, 8)
    np.testing.assert_array_equal(np.asarray(combined[:, :5]), 0.0)  # inputs first
    np.testing.assert_array_equal(np.asarray(combined[:, 5:]), 7.0)  # then the prompt
