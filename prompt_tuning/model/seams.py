"""The model's two seams for prompts, as protocols: what combines a prompt with the embedded
encoder inputs (`Combiner`), and what may rewrite the encoder's activations before each layer
(`LayerHook`). `prompt_tuning.prompts` implements them; the model only calls them."""

from __future__ import annotations

from typing import Optional, Protocol

import jax

Array = jax.Array


class Combiner(Protocol):
    """What the encoder seam calls: a prompt module, or anything with its signature.

    Args:
      embedded: [batch, length, embed] embedded input tokens.
      mask: [batch, length] bool, true on real (non-padding) tokens.
      prompt_ids: [batch] int, which prompt each example uses (None: a single prompt).
    Returns:
      ([batch, new_length, embed], [batch, new_length] bool).
    """

    def __call__(self, embedded: Array, mask: Array,
                 prompt_ids: Optional[Array] = None) -> tuple[Array, Array]:
        ...


class LayerHook(Protocol):
    """What the encoder calls before each of its layers (default: nothing is called).

    Args:
      x: [batch, length, embed] the layer's input (prompt positions included).
      mask: [batch, length] bool, true on real positions.
      layer: the layer's index, 0 for the first.
      prompt_ids: [batch] int or None, as given to `Transformer.encode`.
    Returns:
      [batch, length, embed], the input the layer gets instead.
    """

    def __call__(self, x: Array, mask: Array, layer: int,
                 prompt_ids: Optional[Array] = None) -> Array:
        ...
