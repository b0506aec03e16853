"""A table of prompts, one picked per example: mixed-task batches through one frozen model.

The parameter `prompt` (`seam.PARAM`) is `[num_prompts, length, embed]`; example `i` of a batch
gets row `prompt_ids[i]`, and the rest is as for a single `Prompt` (same placement, same cast,
before input dropout). One compiled program serves any mix of prompts.
"""

from __future__ import annotations

from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from prompt_tuning.prompts import placements, seam

Array = jax.Array
Initializer = Callable[..., Array]

# `prompt_index` is replicated by the partitioning rules, like the prompt's own axes.
TABLE_AXES = ("prompt_index", "prompt", "prompt_embed")


def _uniform(rng: Array, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
    """U[-0.5, 0.5], the paper's random initialisation, for every row."""
    return jax.random.uniform(rng, shape, dtype, -0.5, 0.5)


class PromptTable(nn.Module):
    """`num_prompts` trainable prompts of `length` positions; `prompt_ids` choose per example.

    Attributes:
      num_prompts: rows of the table.
      length: P, positions of every prompt.
      initializer: a Flax initializer `(rng, shape, dtype) -> [num_prompts, P, embed]`.
        None: U[-0.5, 0.5].
      placement: how each example's prompt and inputs combine (default: prefix).
      param_dtype: storage dtype of the table.
    """

    num_prompts: int
    length: int
    initializer: Optional[Initializer] = None
    placement: placements.Placement = placements.prefix
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, embedded: Array, mask: Array,
                 prompt_ids: Optional[Array] = None) -> tuple[Array, Array]:
        """[batch, length, embed], [batch, length], [batch] -> [batch, P + length, embed], mask."""
        for name in ("num_prompts", "length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"PromptTable.{name} must be a positive integer, got {value!r}.")
        if prompt_ids is None:
            raise ValueError("A PromptTable needs prompt_ids ([batch] int): which prompt each "
                             "example uses.")
        init = self.initializer if self.initializer is not None else _uniform
        table = self.param(seam.PARAM, nn.with_logical_partitioning(init, TABLE_AXES),
                           (self.num_prompts, self.length, embedded.shape[-1]), self.param_dtype)
        # [num_prompts, P, embed] gathered by [batch] -> [batch, P, embed]
        prompt = jnp.take(table, prompt_ids, axis=0).astype(embedded.dtype)
        return self.placement(prompt, embedded, mask)
