"""Rematerialisation and scanned layers trade compute (and program size) for memory and change
no result."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prompt_tuning import errors, runtime
from prompt_tuning.model import T5Config, abstract_params, init_params, scanned_params
from prompt_tuning.prompts import Prompt, seam
from prompt_tuning.training import losses

CONFIG = T5Config(vocab_size=64, emb_dim=32, num_heads=2, num_encoder_layers=2,
                  num_decoder_layers=2, head_dim=16, mlp_dim=64, dropout_rate=0.1)


def _loss_and_prompt_gradient(policy: str, scan: bool = False, dropout: float = 0.1):
    config = CONFIG.replace(remat_policy=policy, scan_layers=scan, dropout_rate=dropout)
    model = seam.prompted_model(config, Prompt(5))
    frozen = init_params(CONFIG, jax.random.PRNGKey(0))
    if scan:
        frozen = scanned_params.stack_layers(frozen, CONFIG)
    params = seam.with_prompt(frozen, np.random.default_rng(0).uniform(-0.5, 0.5, (5, 32)))
    rng = np.random.default_rng(1)
    targets = rng.integers(2, 64, (4, 3)).astype(np.int32)
    batch = {"encoder_input_tokens": rng.integers(2, 64, (4, 9)).astype(np.int32),
             "decoder_target_tokens": targets,
             "decoder_input_tokens": np.pad(targets[:, :-1], ((0, 0), (1, 0))),
             "decoder_loss_weights": np.ones_like(targets)}

    def loss_fn(prompt):
        logits = runtime.logits(model, {**params, "prompt": {"prompt": prompt}}, batch,
                                jax.random.PRNGKey(2))  # dropout on: remat must redo it alike
        return losses.weighted_loss(logits, batch["decoder_target_tokens"],
                                    batch["decoder_loss_weights"])[0]

    return jax.jit(jax.value_and_grad(loss_fn))(params["prompt"]["prompt"])


# Dropout masks derive from each layer's place in the module tree, which a scan changes: scanned
# layers are compared without dropout; rematerialised ones redo their dropout alike.
@pytest.mark.parametrize("policy, scan, dropout", [("minimal", False, 0.1), ("full", False, 0.1),
                                                   ("none", True, 0.0), ("full", True, 0.0)])
def test_every_policy_and_scanning_give_the_same_loss_and_gradient(policy, scan, dropout):
    loss, grad = _loss_and_prompt_gradient("none", dropout=dropout)
    other_loss, other_grad = _loss_and_prompt_gradient(policy, scan, dropout)
    # The same operations; scanning may fuse them otherwise (float32 rounding).
    np.testing.assert_allclose(other_loss, loss, rtol=1e-6)
    np.testing.assert_allclose(other_grad, grad, rtol=1e-5, atol=1e-6)
    assert float(jnp.abs(grad).max()) > 0


def test_stacking_and_unstacking_the_layers():
    params = init_params(CONFIG, jax.random.PRNGKey(3))
    stacked = scanned_params.stack_layers(params, CONFIG)
    scanned_shapes = jax.tree.map(lambda x: x.shape,
                                  abstract_params(CONFIG.replace(scan_layers=True)))
    assert jax.tree.map(lambda x: x.shape, stacked) == scanned_shapes
    back = scanned_params.unstack_layers(stacked)
    jax.tree.map(np.testing.assert_array_equal, back, params)


def test_a_policy_that_does_not_exist():
    with pytest.raises(ValueError, match="remat_policy must be one of"):
        CONFIG.replace(remat_policy="some")
    with pytest.raises(errors.UsageError, match="REMAT_POLICY must be one of"):
        runtime.ModelConfig("builtin:tiny_t5", remat_policy="some")
