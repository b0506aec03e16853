"""The soft prompt: one `[prompt_length, embed]` parameter combined with the encoder's inputs."""

from __future__ import annotations

from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from prompt_tuning.prompts import placements, seam

Array = jax.Array
Initializer = Callable[..., Array]

# Logical axes of the prompt. `prompt_embed` (not `embed`) keeps the prompt replicated even when
# the rules shard `embed` (2-D parameter sharding), so any host can read and export it whole.
PROMPT_AXES = ("prompt", "prompt_embed")


def _default_init() -> Initializer:
    from prompt_tuning.prompts import initializers  # pylint: disable=import-outside-toplevel
    return initializers.random_uniform()


class Prompt(nn.Module):
    """A trainable prompt, placed into the embedded encoder inputs.

    The parameter `prompt` (`seam.PARAM`) is `[length, embed]`, kept in float32 (`param_dtype`)
    and cast to the activation dtype where it is used. It is combined before the encoder's input
    dropout, as the reference does, so the prompt is regularised like the token embeddings.

    Attributes:
      length: P, the number of prompt positions.
      initializer: a Flax initializer `(rng, shape, dtype) -> [P, embed]` (see `prompts.initializers`).
      placement: how prompt and inputs combine (default: prefix).
      param_dtype: storage dtype of the prompt.
    """

    length: int
    initializer: Optional[Initializer] = None
    placement: placements.Placement = placements.prefix
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, embedded: Array, mask: Array,
                 prompt_ids: Optional[Array] = None) -> tuple[Array, Array]:
        """[batch, length, embed], [batch, length] -> [batch, P + length, embed], [batch, P + length]."""
        if not isinstance(self.length, int) or self.length <= 0:
            raise ValueError(f"Prompt length must be a positive integer, got {self.length!r}.")
        if prompt_ids is not None:
            raise ValueError("This Prompt holds a single prompt; prompt_ids are for a prompt table.")
        init = self.initializer if self.initializer is not None else _default_init()
        prompt = self.param(seam.PARAM, nn.with_logical_partitioning(init, PROMPT_AXES),
                            (self.length, embedded.shape[-1]), self.param_dtype)
        batch = embedded.shape[0]
        # [P, embed] -> [batch, P, embed]
        prompt = jnp.broadcast_to(prompt.astype(embedded.dtype), (batch, *prompt.shape))
        return self.placement(prompt, embedded, mask)
