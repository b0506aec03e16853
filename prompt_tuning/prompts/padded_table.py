"""Prompts of different lengths in one table, padded to the longest and masked.

One compiled program then serves any mix of prompts (any lengths, any example picking any
prompt): `PaddedPromptTable(lengths=(100, 20, 5))` holds `[3, 100, embed]`, row i's prompt in its
first `lengths[i]` positions, the rest padding. Each example's row is gathered by `prompt_ids`,
and the placement masks the padding out of attention and arranges it so that every real position
keeps its distance to the inputs (T5's attention is relative): an example's outputs equal those
of its prompt alone, unpadded, to float tolerance.
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from prompt_tuning.prompts import placements, seam
from prompt_tuning.prompts.table import TABLE_AXES

Array = jax.Array


class PaddedPromptTable(nn.Module):
    """`len(lengths)` prompts, of `lengths[i]` positions each, picked per example by `prompt_ids`.

    Attributes:
      lengths: the real length of each row.
      length: positions of the table (>= max(lengths); None: max(lengths)); a few fixed
        table shapes keep one compiled program as prompts come and go.
      placement: how each example's prompt and inputs combine (default: prefix).
      param_dtype: storage dtype of the table.
    """

    lengths: Sequence[int]
    length: Optional[int] = None
    placement: placements.Placement = placements.prefix
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, embedded: Array, mask: Array,
                 prompt_ids: Optional[Array] = None) -> tuple[Array, Array]:
        """[batch, length, embed], [batch, length], [batch] -> [batch, positions + length,
        embed] and its mask."""
        lengths = tuple(self.lengths)
        if not lengths or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                  for n in lengths):
            raise ValueError(f"PaddedPromptTable.lengths must be positive integers, got "
                             f"{self.lengths!r}.")
        positions = self.length if self.length is not None else max(lengths)
        if not isinstance(positions, int) or positions < max(lengths):
            raise ValueError(f"PaddedPromptTable.length must be an integer >= max(lengths) = "
                             f"{max(lengths)}, got {self.length!r}.")
        if prompt_ids is None:
            raise ValueError("A PaddedPromptTable needs prompt_ids ([batch] int): which prompt "
                             "each example uses.")
        table = self.param(seam.PARAM, nn.with_logical_partitioning(nn.initializers.zeros,
                                                                    TABLE_AXES),
                           (len(lengths), positions, embedded.shape[-1]), self.param_dtype)
        # [num_prompts, P, embed] gathered by [batch] -> [batch, P, embed]; the mask likewise.
        prompt = jnp.take(table, prompt_ids, axis=0)
        real = jnp.arange(positions)[None, :] < jnp.asarray(lengths)[:, None]
        prompt_mask = jnp.take(real, prompt_ids, axis=0)
        return self.placement(prompt, embedded, mask, prompt_mask)
