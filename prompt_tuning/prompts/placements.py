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
    return _along_length(_attended(prompt, embedded, mask), (embedded, mask))


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
    return _along_length((embedded, mask), _attended(prompt, embedded, mask))


def _attended(prompt: Array, embedded: Array, mask: Array) -> tuple[Array, Array]:
    """The prompt in the inputs' dtype, with a mask that attends to all of it."""
    return prompt.astype(embedded.dtype), jnp.ones(prompt.shape[:2], dtype=mask.dtype)


def _along_length(*parts: tuple[Array, Array]) -> tuple[Array, Array]:
    """(embeddings, mask) pairs joined along the length axis, in order."""
    return (jnp.concatenate([x for x, _ in parts], axis=1),
            jnp.concatenate([m for _, m in parts], axis=1))
