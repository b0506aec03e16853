"""T5's relative position bias: one `[heads, buckets]` table shared by all layers of a stack."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def relative_position_bucket(relative_position: Array, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> Array:
    """Maps `key_position - query_position` to a bucket id, as T5 does.

    Half the buckets (per direction when bidirectional) hold exact small distances; the rest are
    log-spaced up to `max_distance`, beyond which all distances share the last bucket.
    [...] int -> [...] int32
    """
    bucket = 0
    distance = -relative_position
    if bidirectional:
        num_buckets //= 2
        bucket += (distance < 0).astype(jnp.int32) * num_buckets
        distance = jnp.abs(distance)
    else:
        distance = jnp.maximum(distance, 0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # Only used where distance >= max_exact > 0, so the log is finite there.
    safe = jnp.maximum(distance, max_exact).astype(jnp.float32)
    large = max_exact + (jnp.log(safe / max_exact) / np.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).astype(jnp.int32)
    large = jnp.minimum(large, num_buckets - 1)
    return bucket + jnp.where(is_small, distance, large)


class RelativePositionBiases(nn.Module):
    """Adds T5's learned relative position bias to attention logits.

    `rel_embedding` is `[heads, relpos_buckets]` (T5X's name and axes).
    Returns `[1, heads, q_length, k_length]` float32 for queries at positions
    `query_offset + [0, q_length)` against keys at `[0, k_length)`.
    """

    num_buckets: int
    max_distance: int
    num_heads: int
    bidirectional: bool
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, q_length: int, k_length: int, query_offset: int | Array = 0) -> Array:
        table = self.param(
            "rel_embedding",
            nn.with_logical_partitioning(nn.initializers.variance_scaling(1.0, "fan_avg", "uniform"),
                                         ("heads", "relpos_buckets")),
            (self.num_heads, self.num_buckets), self.param_dtype)
        query = jnp.arange(q_length)[:, None] + query_offset
        key = jnp.arange(k_length)[None, :]
        buckets = relative_position_bucket(key - query, self.bidirectional, self.num_buckets,
                                           self.max_distance)       # [q, k]
        bias = jnp.take(table.astype(jnp.float32), buckets, axis=1)  # [heads, q, k]
        return bias[None]
