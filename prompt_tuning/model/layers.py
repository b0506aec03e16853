"""The building blocks of T5 1.1, with T5X parameter names and logical axis names.

Every parameter is created through `nn.with_logical_partitioning`, so the partitioner can map
its logical axes (`embed`, `mlp`, `joined_kv`, ...) onto a device mesh without model changes.
"""

from __future__ import annotations

from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from prompt_tuning.model import matmul

Array = jax.Array
Initializer = Callable[..., Array]

# T5X's initializers: fan-in scaled normals for kernels, N(0, 1) for the embedding.
default_kernel_init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
default_embed_init = nn.initializers.normal(stddev=1.0)
NEG_INF = -1e10


class RMSNorm(nn.Module):
    """T5's layer norm: no mean subtraction and no bias, computed in float32.

    [..., embed] -> [..., embed]
    """

    epsilon: float = 1e-6
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
                           (x.shape[-1],), self.param_dtype)
        x = x.astype(jnp.float32)
        x = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + self.epsilon)
        return (x * scale.astype(jnp.float32)).astype(self.dtype)


class Dense(nn.Module):
    """A bias-free linear map with a 2-D kernel `[in, out]`, as T5X stores it.

    Computed in `dtype` with float32 accumulation (`matmul.einsum`); the result is cast to
    `out_dtype` (None: `dtype`).

    [..., in] -> [..., features]
    """

    features: int
    kernel_axes: tuple[str, str]
    kernel_init: Initializer = default_kernel_init
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32
    out_dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param("kernel", nn.with_logical_partitioning(self.kernel_init, self.kernel_axes),
                            (x.shape[-1], self.features), self.param_dtype)
        rows = x.reshape(-1, x.shape[-1])
        y = matmul.einsum("ni,io->no", rows, kernel, self.dtype)
        y = y.astype(self.dtype if self.out_dtype is None else self.out_dtype)
        return y.reshape(*x.shape[:-1], self.features)


class Embed(nn.Module):
    """The shared token embedding `[vocab, embed]`.

    [batch, length] int -> [batch, length, embed]
    """

    num_embeddings: int
    features: int
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.embedding = self.param(
            "embedding", nn.with_logical_partitioning(default_embed_init, ("vocab", "embed")),
            (self.num_embeddings, self.features), self.param_dtype)

    def __call__(self, tokens: Array) -> Array:
        return jnp.take(self.embedding, tokens, axis=0).astype(self.dtype)


class MlpBlock(nn.Module):
    """T5 1.1's gated-GELU MLP: `wo(gelu(wi_0 x) * wi_1 x)`.

    [batch, length, embed] -> [batch, length, embed]
    """

    mlp_dim: int
    dropout_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, deterministic: bool = True) -> Array:
        dense = lambda features, axes, name: Dense(features, axes, dtype=self.dtype,
                                                   param_dtype=self.param_dtype, name=name)
        gate = nn.gelu(dense(self.mlp_dim, ("embed", "mlp"), "wi_0")(x), approximate=True)
        hidden = gate * dense(self.mlp_dim, ("embed", "mlp"), "wi_1")(x)
        hidden = nn.with_logical_constraint(hidden, ("batch", "length", "mlp"))
        hidden = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(hidden, deterministic)
        return dense(x.shape[-1], ("mlp", "embed"), "wo")(hidden)


class MultiHeadAttention(nn.Module):
    """Dot-product attention without the 1/sqrt(head_dim) scaling (T5 folds it into the init).

    `__call__` projects queries, keys and values and attends. For cached decoding the two halves
    are also available apart: `project_kv` (keys and values of some positions, e.g. of the encoder
    outputs once, or of one new decoder position per step) and `attend` (queries against given
    keys and values).

    Args of `__call__`:
      queries: [batch, q_length, embed]
      keys_values: [batch, kv_length, embed]
      bias: [batch or 1, heads or 1, q_length, kv_length], added to the logits (masks and
        relative positions, combined by the caller).
    Returns:
      [batch, q_length, embed]
    """

    num_heads: int
    head_dim: int
    out_features: int
    dropout_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    def setup(self):
        joined = self.num_heads * self.head_dim
        depth_scaled_init = lambda *args: default_kernel_init(*args) / jnp.sqrt(self.head_dim)
        dense = lambda features, axes, init: Dense(features, axes, init, self.dtype,
                                                   self.param_dtype)
        self.query = dense(joined, ("embed", "joined_kv"), depth_scaled_init)
        self.key = dense(joined, ("embed", "joined_kv"), default_kernel_init)
        self.value = dense(joined, ("embed", "joined_kv"), default_kernel_init)
        self.out = dense(self.out_features, ("joined_kv", "embed"), default_kernel_init)
        self.weights_dropout = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))

    def _heads(self, y: Array, batch: int) -> Array:
        """[rows, length, heads * head_dim] -> [batch, heads, rows // batch * length, head_dim]

        Head-major, so that both attention products are plain batched matmuls over (batch,
        heads): with the heads axis between the lengths, XLA's CPU backend ran the fp32 ones
        at a fourth of the rate (and they took a third of the scoring forward's time).
        """
        joined = y.reshape(batch, -1, self.num_heads, self.head_dim)
        return jnp.swapaxes(joined, 1, 2)

    def project_kv(self, keys_values: Array) -> tuple[Array, Array]:
        """[batch, kv_length, embed] -> (key, value), each [batch, heads, kv_length, head_dim]."""
        batch = keys_values.shape[0]
        return (self._heads(self.key(keys_values), batch),
                self._heads(self.value(keys_values), batch))

    def attend(self, queries: Array, key: Array, value: Array, bias: Array,
               deterministic: bool = True) -> Array:
        """Queries against given keys and values.

        Args:
          queries: [batch', q_length, embed], where batch' is batch times some group size g
            (beams): the g rows of one example share its keys and values.
          key, value: [batch, heads, kv_length, head_dim].
          bias: [batch or 1, heads or 1, q_length or 1, kv_length].
        Returns:
          [batch', q_length, embed]
        """
        rows, q_length = queries.shape[:2]
        groups = rows // key.shape[0]
        # [batch * g, q, embed] -> [batch, heads, g * q, head_dim]: each query attends on its own.
        query = self._heads(self.query(queries), key.shape[0])
        if groups > 1 and bias.shape[2] != 1:
            bias = jnp.repeat(bias, groups, axis=2)
        # Logits and softmax in float32 whatever the activation dtype.
        logits = matmul.einsum("bhqd,bhkd->bhqk", query, key, self.dtype) + bias
        weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
        weights = self.weights_dropout(weights, deterministic)
        out = matmul.einsum("bhqk,bhkd->bhqd", weights, value, self.dtype).astype(self.dtype)
        out = jnp.swapaxes(out, 1, 2)  # [batch, g * q, heads, head_dim]
        return self.out(out.reshape(rows, q_length, self.num_heads * self.head_dim))

    def __call__(self, queries: Array, keys_values: Array, bias: Array,
                 deterministic: bool = True) -> Array:
        key, value = self.project_kv(keys_values)
        return self.attend(queries, key, value, bias, deterministic)


def mask_to_bias(mask: Array) -> Array:
    """[batch, 1, q, k] bool -> the additive float32 bias: 0 where attended, -1e10 elsewhere."""
    return jnp.where(mask, 0.0, NEG_INF).astype(jnp.float32)


def attention_mask(query_valid: Array, key_valid: Array) -> Array:
    """[batch, q] bool, [batch, k] bool -> [batch, 1, q, k] bool."""
    return (query_valid[:, None, :, None] & key_valid[:, None, None, :])


def causal_mask(length: int) -> Array:
    """-> [1, 1, length, length] bool, true where key position <= query position."""
    idx = jnp.arange(length)
    return (idx[None, :] <= idx[:, None])[None, None]


def dropout(rate: float) -> Callable[..., Array]:
    """T5X's residual dropout: one mask broadcast over the length axis."""
    return nn.Dropout(rate, broadcast_dims=(-2,))

