"""Creating and describing a model's parameter tree (`{"token_embedder": ..., "encoder": ...}`)."""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from prompt_tuning.model.config import T5Config
from prompt_tuning.model.network import Transformer

PyTree = Any


def _dummy_inputs() -> tuple[jax.Array, jax.Array]:
    return jnp.ones((1, 4), jnp.int32), jnp.ones((1, 2), jnp.int32)


def init_variables(model: Transformer, rng: jax.Array) -> PyTree:
    """The boxed (logically annotated) variables of `model`, e.g. for partition specs."""
    return model.init(rng, *_dummy_inputs())


def abstract_variables(model_or_config: Transformer | T5Config,
                       rng: Optional[jax.Array] = None) -> PyTree:
    """`init_variables` as shapes and dtypes only (boxed with logical axes); nothing allocated."""
    model = _as_model(model_or_config)
    rng = jax.random.PRNGKey(0) if rng is None else rng
    # The module is closed over, not passed: eval_shape takes only pytrees of arrays.
    return jax.eval_shape(lambda key: init_variables(model, key), rng)


def abstract_params(model_or_config: Transformer | T5Config,
                    rng: Optional[jax.Array] = None) -> PyTree:
    """Shapes and dtypes of the (unboxed) parameters, without allocating them."""
    return nn.meta.unbox(abstract_variables(model_or_config, rng))["params"]


def logical_axes(model_or_config: Transformer | T5Config) -> PyTree:
    """The logical axis names of every parameter, as a tree of `PartitionSpec`s."""
    return nn.get_partition_spec(abstract_variables(model_or_config))["params"]


def init_params(model_or_config: Transformer | T5Config, rng: jax.Array) -> PyTree:
    """Randomly initialised, unboxed parameters."""
    return nn.meta.unbox(init_variables(_as_model(model_or_config), rng))["params"]


def compute_params(params: PyTree, config: T5Config) -> PyTree:
    """Frozen parameters as the model computes with them: every matmul kernel (`logits_dense`
    too) in the activation dtype (each use casts it there anyway, so nothing changes but the
    bytes), once instead of at every step; layer norm scales, relative position biases and the
    token embedding (also read to initialise prompts) are kept as they are. The identity in
    float32. Works on arrays (placed or not) and on `jax.ShapeDtypeStruct`s alike.

    Only for parameters that do not train: optimising a 16-bit copy would lose the updates.
    """
    dtype = config.activation_dtype
    if dtype == jnp.float32:
        return params
    flat = traverse_util.flatten_dict(params)
    for path in list(flat):  # replaced one by one: the old copy of each goes as soon as it can
        leaf = flat[path]
        if path[-1] == "kernel" and leaf.dtype != dtype:
            flat[path] = (jax.ShapeDtypeStruct(leaf.shape, dtype, sharding=leaf.sharding)
                          if isinstance(leaf, jax.ShapeDtypeStruct) else leaf.astype(dtype))
    return traverse_util.unflatten_dict(flat)


def param_count(params: PyTree) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def _as_model(model_or_config: Transformer | T5Config) -> Transformer:
    if isinstance(model_or_config, T5Config):
        return Transformer(model_or_config)
    return model_or_config
