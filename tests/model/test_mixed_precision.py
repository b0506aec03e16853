"""Activation and parameter dtypes. bfloat16 activations done right: every product takes bf16
operands and accumulates in float32, forward and backward; norms, softmax, logits and the loss
stay float32; the prompt and its gradient are float32; the result stays close to float32.
Frozen kernels are kept in the activation dtype; the prompt is stored in float32 whatever the
parameter dtype."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from prompt_tuning.model import T5Config, Transformer, compute_params, init_params, matmul
from prompt_tuning.prompts import Prompt
from prompt_tuning.training import trainable

CONFIG = T5Config(vocab_size=128, emb_dim=64, num_heads=4, num_encoder_layers=2,
                  num_decoder_layers=2, head_dim=16, mlp_dim=96)
BF16 = jnp.dtype(jnp.bfloat16)


def _batch():
    rng = np.random.default_rng(0)
    enc = rng.integers(2, CONFIG.vocab_size, size=(3, 12))
    enc[1, 7:] = 0
    targets = rng.integers(2, CONFIG.vocab_size, size=(3, 5))
    dec_in = np.concatenate([np.zeros((3, 1), int), targets[:, :-1]], axis=1)
    return enc, dec_in, targets


def _loss_and_prompt_grad(dtype):
    """(summed target log-likelihood loss, d loss / d prompt) with frozen kernels as kept."""
    enc, dec_in, targets = _batch()
    config = CONFIG.replace(dtype=dtype)
    model = Transformer(config, prompt=Prompt(4))
    params = init_params(Transformer(CONFIG, prompt=Prompt(4)), jax.random.PRNGKey(0))
    trained, frozen = trainable.split(params, ["prompt/prompt"])
    frozen = compute_params(frozen, config)

    def loss(trained, frozen):
        logits = model.apply({"params": trainable.merge(trained, frozen)}, enc, dec_in, targets)
        logp = jax.nn.log_softmax(logits.astype(jnp.float32))
        return -jnp.take_along_axis(logp, targets[..., None], axis=-1).sum()

    return loss, trained, frozen


def _equations(jaxpr):
    """Every equation of `jaxpr`, nested ones (pjit, custom_vjp, remat) included."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in (value if isinstance(value, (tuple, list)) else [value]):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


def test_einsum_forward_and_backward_take_bf16_and_accumulate_in_float32():
    rng = np.random.default_rng(1)
    lhs = jnp.asarray(rng.normal(size=(2, 5, 3, 8)), jnp.float32)
    rhs = jnp.asarray(rng.normal(size=(2, 7, 3, 8)), jnp.float32)
    spec = "bqhd,bkhd->bhqk"

    def f(dtype):
        return lambda a, b: (matmul.einsum(spec, a, b, dtype) ** 2).sum()

    jaxpr = jax.make_jaxpr(jax.grad(f(jnp.bfloat16), argnums=(0, 1)))(lhs, rhs).jaxpr
    dots = [e for e in _equations(jaxpr) if e.primitive.name == "dot_general"]
    assert len(dots) == 3  # the forward product and one per operand backward
    for e in dots:
        assert [v.aval.dtype for v in e.invars] == [BF16, BF16]
        assert e.outvars[0].aval.dtype == jnp.float32
    out = matmul.einsum(spec, lhs, rhs, jnp.bfloat16)
    assert out.dtype == jnp.float32
    exact = jnp.einsum(spec, lhs, rhs)
    assert float(jnp.abs(out - exact).max()) < 0.05 * float(jnp.abs(exact).max())
    grads = jax.grad(f(jnp.bfloat16), argnums=(0, 1))(lhs, rhs)
    exact_grads = jax.grad(f(jnp.float32), argnums=(0, 1))(lhs, rhs)
    for g, e in zip(grads, exact_grads):
        assert g.dtype == jnp.float32
        assert float(jnp.abs(g - e).max()) < 0.05 * float(jnp.abs(e).max())
    # float32 is a plain einsum: bit for bit.
    np.testing.assert_array_equal(matmul.einsum(spec, lhs, rhs, jnp.float32), exact)


def test_bf16_train_graph_products_norms_softmax_and_prompt():
    loss, trained, frozen = _loss_and_prompt_grad("bfloat16")
    jaxpr = jax.make_jaxpr(jax.value_and_grad(loss))(trained, frozen).jaxpr
    eqns = list(_equations(jaxpr))
    dots = [e for e in eqns if e.primitive.name == "dot_general"]
    assert len(dots) > 40  # forward and backward of every layer and of the logits head
    for e in dots:
        assert [v.aval.dtype for v in e.invars] == [BF16, BF16]
        assert e.outvars[0].aval.dtype == jnp.float32
    for name in ("exp", "rsqrt", "log"):  # softmax, RMS norm, loss
        found = [e for e in eqns if e.primitive.name == name]
        assert found and all(e.invars[0].aval.dtype == jnp.float32 for e in found), name
    value, grad = jax.jit(jax.value_and_grad(loss))(trained, frozen)
    assert grad["prompt/prompt"].dtype == trained["prompt/prompt"].dtype == jnp.float32


def test_bf16_loss_and_prompt_gradient_stay_close_to_float32():
    results = {}
    for dtype in ("float32", "bfloat16"):
        loss, trained, frozen = _loss_and_prompt_grad(dtype)
        results[dtype] = jax.jit(jax.value_and_grad(loss))(trained, frozen)
    (l32, g32), (l16, g16) = results["float32"], results["bfloat16"]
    g32, g16 = np.asarray(g32["prompt/prompt"]), np.asarray(g16["prompt/prompt"])
    assert abs(float(l16) - float(l32)) < 0.01 * abs(float(l32))
    cosine = float((g32 * g16).sum() / np.linalg.norm(g32) / np.linalg.norm(g16))
    assert 0.99 < cosine < 1.0  # close, and the bf16 path really ran


def test_compute_params_casts_the_kernels_only():
    params = init_params(Transformer(CONFIG, prompt=Prompt(4)), jax.random.PRNGKey(0))
    assert compute_params(params, CONFIG) is params  # float32: untouched
    cast = traverse_util.flatten_dict(compute_params(params, CONFIG.replace(dtype="bfloat16")),
                                      sep="/")
    for path, value in traverse_util.flatten_dict(params, sep="/").items():
        assert cast[path].dtype == (BF16 if path.endswith("kernel") else jnp.float32), path
        np.testing.assert_array_equal(np.asarray(cast[path], np.float32),
                                      np.asarray(value.astype(cast[path].dtype), np.float32))
    abstract = jax.eval_shape(lambda: params)
    shapes = traverse_util.flatten_dict(compute_params(abstract, CONFIG.replace(dtype="bfloat16")),
                                        sep="/")
    assert {p: s.dtype for p, s in shapes.items()} == {p: v.dtype for p, v in cast.items()}


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
