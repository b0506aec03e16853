"""T5X's cross-entropy with z-loss and loss normalisation."""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

import jax
import jax.numpy as jnp

from prompt_tuning import errors

Array = jax.Array
# Divide the summed loss by the number of target tokens with non-zero weight.
NUM_REAL_TARGET_TOKENS = "NUM_REAL_TARGET_TOKENS"


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """The recipe's loss: cross entropy + `z_loss * logsumexp^2`, summed over target tokens
    (`loss_normalizing_factor=None`, as T5X), or divided by a number or the token count."""

    z_loss: float = 1e-4
    loss_normalizing_factor: Optional[Union[float, str]] = None

    def __post_init__(self):
        if isinstance(self.z_loss, bool) or not isinstance(self.z_loss, (int, float)) \
                or self.z_loss < 0:
            raise errors.UsageError(f"z_loss must be a number >= 0, got {self.z_loss!r}.")
        factor = self.loss_normalizing_factor
        if factor is not None and factor != NUM_REAL_TARGET_TOKENS and (
                isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 0):
            raise errors.UsageError(f"loss_normalizing_factor must be None, a positive number or "
                                    f"'{NUM_REAL_TARGET_TOKENS}', got {factor!r}.")


def cross_entropy_with_z_loss(logits: Array, targets: Array, z_loss: float) -> tuple[Array, Array]:
    """Per-token cross entropy plus `z_loss * logsumexp(logits)^2` (PaLM/T5X's z-loss).

    Args:
      logits: [batch, length, vocab] float32.
      targets: [batch, length] int.
    Returns:
      (loss [batch, length] including the z-loss, z_loss part [batch, length]).
    """
    log_z = jax.nn.logsumexp(logits, axis=-1)
    target_logits = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    z = z_loss * jnp.square(log_z)
    return log_z - target_logits + z, z


def normalizer(loss_normalizing_factor: Optional[Union[float, str]], num_tokens: Array) -> Array:
    """What the summed loss is divided by: 1 (None, T5X's default), the number given, or the
    number of weighted target tokens (NUM_REAL_TARGET_TOKENS)."""
    if loss_normalizing_factor == NUM_REAL_TARGET_TOKENS:
        return jnp.maximum(num_tokens, 1.0)
    if loss_normalizing_factor is None:
        return jnp.float32(1.0)
    return jnp.float32(loss_normalizing_factor)


def weighted_loss(logits: Array, targets: Array, weights: Array, z_loss: float = 1e-4,
                  loss_normalizing_factor: Optional[Union[float, str]] = None
                  ) -> tuple[Array, dict[str, Array]]:
    """T5X's `compute_weighted_cross_entropy` without label smoothing.

    With `loss_normalizing_factor=None` (the prompt-tuning recipe, as in T5X) the loss is the sum
    over all target tokens of the batch; a number divides that sum; NUM_REAL_TARGET_TOKENS
    divides by the count of weighted tokens.

    Returns:
      (scalar loss, metrics: summed `cross_entropy`, `z_loss` and `num_tokens`).
    """
    per_token, z = cross_entropy_with_z_loss(logits, targets, z_loss)
    weights = weights.astype(jnp.float32)
    num_tokens = weights.sum()
    loss = (per_token * weights).sum() / normalizer(loss_normalizing_factor, num_tokens)
    return loss, {"cross_entropy": ((per_token - z) * weights).sum(),
                  "z_loss": (z * weights).sum(), "num_tokens": num_tokens}
