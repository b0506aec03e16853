"""Where the prompt goes in the encoder input: each placement is one small function.

A placement takes the batch-expanded prompt and the embedded inputs with their mask, and returns
the combined embeddings and the grown mask. Another placement (say, after a BOS token) is a new
function with this signature, passed to `Prompt(placement=...)`; nothing else changes.
"""

from __future__ import annotations

from typing import Optional, Protocol

import jax
import jax.numpy as jnp

Array = jax.Array


class Placement(Protocol):
    """(prompt [batch, P, embed], embedded [batch, length, embed], mask [batch, length] bool,
    prompt_mask [batch, P] bool or None) -> ([batch, P + length, embed], [batch, P + length]).

    `prompt_mask` marks the real positions of prompts padded to one length P (a table of prompts
    of different lengths), each row's real positions first; None: all P positions are real.
    A placement arranges the padding so that every real position keeps its distances to the
    inputs, hence T5's relative position buckets: the padded prompt then gives what the unpadded
    one does (the padding is masked out of attention).
    """

    def __call__(self, prompt: Array, embedded: Array, mask: Array,
                 prompt_mask: Optional[Array] = None) -> tuple[Array, Array]:
        ...


def prefix(prompt: Array, embedded: Array, mask: Array,
           prompt_mask: Optional[Array] = None) -> tuple[Array, Array]:
    """Prepends the prompt, as Lester et al. (2021) do; every real prompt position is attendable.

    A padded prompt is shifted right first (its padding goes before it), so its last position
    stays next to the inputs, as the unpadded prompt's is.

    Args:
      prompt: [batch, P, embed]
      embedded: [batch, length, embed]
      mask: [batch, length] bool
      prompt_mask: [batch, P] bool, each row's real positions first; None: all real.
    Returns:
      ([batch, P + length, embed], [batch, P + length] bool)
    """
    padded = prompt_mask is not None
    prompt, prompt_mask = _attended(prompt, embedded, mask, prompt_mask)
    if padded:
        prompt, prompt_mask = _right_aligned(prompt, prompt_mask)
    return _along_length((prompt, prompt_mask), (embedded, mask))


def suffix(prompt: Array, embedded: Array, mask: Array,
           prompt_mask: Optional[Array] = None) -> tuple[Array, Array]:
    """Appends the prompt after the (padded) inputs, as the reference's `suffix_prompt` does.

    Padding stays masked where it is; every prompt position is attendable.

    Args:
      prompt: [batch, P, embed]
      embedded: [batch, length, embed]
      mask: [batch, length] bool
      prompt_mask: [batch, P] bool, each row's real positions first (its padding stays at the
        end, away from the inputs); None: all real.
    Returns:
      ([batch, length + P, embed], [batch, length + P] bool)
    """
    return _along_length((embedded, mask), _attended(prompt, embedded, mask, prompt_mask))


def _attended(prompt: Array, embedded: Array, mask: Array,
              prompt_mask: Optional[Array] = None) -> tuple[Array, Array]:
    """The prompt in the inputs' dtype, with a mask that attends to its real positions."""
    if prompt_mask is None:
        return prompt.astype(embedded.dtype), jnp.ones(prompt.shape[:2], dtype=mask.dtype)
    return prompt.astype(embedded.dtype), prompt_mask.astype(mask.dtype)


def _right_aligned(prompt: Array, prompt_mask: Array) -> tuple[Array, Array]:
    """Each row rolled right by its padding, so its real positions end at position P - 1.
    [batch, P, embed], [batch, P] -> the same shapes."""
    num = prompt.shape[1]
    shift = num - prompt_mask.astype(jnp.int32).sum(axis=1)  # [batch]
    source = (jnp.arange(num)[None, :] - shift[:, None]) % num  # [batch, P]
    return (jnp.take_along_axis(prompt, source[..., None], axis=1),
            jnp.take_along_axis(prompt_mask, source, axis=1))


def _along_length(*parts: tuple[Array, Array]) -> tuple[Array, Array]:
    """(embeddings, mask) pairs joined along the length axis, in order."""
    return (jnp.concatenate([x for x, _ in parts], axis=1),
            jnp.concatenate([m for _, m in parts], axis=1))


# The placements by name, for `PLACEMENT = 'suffix'` in gin (a function reference would need a
# gin file that mentions it before a --gin binding could name it).
PLACEMENTS = {"prefix": prefix, "suffix": suffix}
