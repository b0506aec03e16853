"""Where the prompt goes in the encoder input: each placement is one small function.

A placement takes the batch-expanded prompt and the embedded inputs with their mask, and returns
the combined embeddings and the grown mask. Another placement (say, after a BOS token) is a new
function with this signature, passed to `Prompt(placement=...)`; nothing else changes.
"""

from __future__ import annotations

from typing import Protocol

import jax
import jax.numpy as jnp

Array = jax.Array


class Placement(Protocol):
    """(prompt [batch, P, embed], embedded [batch, length, embed], mask [batch, length] bool)
    -> ([batch, P + length, embed], [batch, P + length] bool)."""

    def __call__(self, prompt: Array, embedded: Array, mask: Array) -> tuple[Array, Array]:
        ...


def prefix(prompt: Array, embedded: Array, mask: Array) -> tuple[Array, Array]:
    """Prepends the prompt, as Lester et al. (2021) do; every prompt position is attendable.

    Args:
      prompt: [batch, P, embed]
      embedded: [batch, length, embed]
      mask: [batch, length] bool
    Returns:
      ([batch, P + length, embed], [batch, P + length] bool)
    """
    prompt_mask = jnp.ones(prompt.shape[:2], dtype=mask.dtype)
    return (jnp.concatenate([prompt.astype(embedded.dtype), embedded], axis=1),
            jnp.concatenate([prompt_mask, mask], axis=1))


def suffix(prompt: Array, embedded: Array, mask: Array) -> tuple[Array, Array]:
    """Appends the prompt after the (padded) inputs, as the reference's `suffix_prompt` does.

    Padding stays masked where it is; every prompt position is attendable.

    Args:
      prompt: [batch, P, embed]
      embedded: [batch, length, embed]
      mask: [batch, length] bool
    Returns:
      ([batch, length + P, embed], [batch, length + P] bool)
    """
    prompt_mask = jnp.ones(prompt.shape[:2], dtype=mask.dtype)
    return (jnp.concatenate([embedded, prompt.astype(embedded.dtype)], axis=1),
            jnp.concatenate([mask, prompt_mask], axis=1))
