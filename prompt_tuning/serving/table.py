"""The server's prompt table: a fixed `[capacity, length, d]` table whose rows' real lengths are
parameters too, so registering a prompt changes arrays, not the compiled programs.

`prompts.PaddedPromptTable` bakes its rows' lengths into the program as constants (right for a
fixed set of prompts); a server that adds prompts while it runs would then recompile every batch
shape at each registration. Here the lengths are a `[capacity]` int32 parameter next to the
table; the placement (and so each example's result) is the same as `PaddedPromptTable`'s.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning.prompts import placements, seam
from prompt_tuning.prompts.bank import PromptBank

Array = jax.Array
LENGTHS = "lengths"  # the lengths parameter, next to the table (`seam.PARAM`) in the prompt scope


class ServedPromptTable(nn.Module):
    """`capacity` prompts padded to `length` positions, picked per example by `prompt_ids`.

    Parameters: `seam.PARAM` `[capacity, length, embed]` float32 (row i's prompt first, zeros
    after) and `LENGTHS` `[capacity]` int32 (row i's real length; unused rows 1, never picked).
    """

    capacity: int
    length: int

    @nn.compact
    def __call__(self, embedded: Array, mask: Array, prompt_ids: Array) -> tuple[Array, Array]:
        """[batch, n, embed], [batch, n], [batch] -> [batch, length + n, embed] and its mask."""
        table = self.param(seam.PARAM, nn.initializers.zeros,
                           (self.capacity, self.length, embedded.shape[-1]), jnp.float32)
        lengths = self.param(LENGTHS, nn.initializers.ones, (self.capacity,), jnp.int32)
        prompt = jnp.take(table, prompt_ids, axis=0)                       # [batch, length, d]
        real = jnp.arange(self.length)[None, :] < jnp.take(lengths, prompt_ids)[:, None]
        return placements.prefix(prompt, embedded, mask, real)


def table_params(frozen_params: Any, bank: PromptBank, capacity: int, length: int) -> dict:
    """The frozen parameters plus `bank` as a `ServedPromptTable(capacity, length)`'s, on device."""
    values, lengths = bank.table(capacity, length)
    return {**frozen_params, seam.SCOPE: {seam.PARAM: jnp.asarray(values, jnp.float32),
                                          LENGTHS: jnp.asarray(np.asarray(lengths, np.int32))}}
