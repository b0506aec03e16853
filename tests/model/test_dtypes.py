"""Activation and parameter dtypes: bf16 activations (accelerators) keep fp32 logits and stay
close to fp32; the prompt is stored in fp32 whatever the activation dtype."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from prompt_tuning.model import T5Config, Transformer
from prompt_tuning.prompts import Prompt

CONFIG = T5Config(vocab_size=128, emb_dim=64, num_heads=4, num_encoder_layers=2,
                  num_decoder_layers=2, head_dim=16, mlp_dim=96)


def _batch():
    rng = np.random.default_rng(0)
    enc = rng.integers(2, CONFIG.vocab_size, size=(2, 12))
    enc[1, 7:] = 0
    targets = rng.integers(2, CONFIG.vocab_size, size=(2, 5))
    dec_in = np.concatenate([np.zeros((2, 1), int), targets[:, :-1]], axis=1)
    return enc, dec_in, targets


def _dtypes(params):
    return {k: v.dtype for k, v in traverse_util.flatten_dict(params, sep="/").items()}


def test_bfloat16_activations_give_float32_logits_close_to_float32():
    enc, dec_in, targets = _batch()
    f32 = Transformer(CONFIG, prompt=Prompt(4))
    params = jax.tree.map(lambda x: x.unbox() if hasattr(x, "unbox") else x,
                          f32.init(jax.random.PRNGKey(0), enc, dec_in, targets)["params"],
                          is_leaf=lambda x: hasattr(x, "unbox"))
    bf16 = Transformer(CONFIG.replace(dtype="bfloat16"), prompt=Prompt(4))
    reference = f32.apply({"params": params}, enc, dec_in, targets)
    logits = bf16.apply({"params": params}, enc, dec_in, targets)
    assert reference.dtype == logits.dtype == jnp.float32
    scale = float(jnp.abs(reference).max())
    assert scale > 0.5
    # bf16 keeps 8 bits of mantissa: relative error of a few 1e-2 through two layers per stack.
    assert float(jnp.abs(logits - reference).max()) < 0.05 * scale
    assert float(jnp.abs(logits - reference).max()) > 0  # the bf16 path really ran


def test_parameter_dtype_and_fp32_prompt():
    enc, dec_in, targets = _batch()
    model = Transformer(CONFIG.replace(param_dtype="bfloat16", dtype="bfloat16"),
                        prompt=Prompt(4))
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), enc, dec_in, targets)
    dtypes = _dtypes(jax.tree.map(lambda x: x.value if hasattr(x, "value") else x,
                                  variables["params"], is_leaf=lambda x: hasattr(x, "value")))
    assert dtypes.pop("prompt/prompt") == jnp.float32
    assert set(dtypes.values()) == {jnp.dtype(jnp.bfloat16)}
