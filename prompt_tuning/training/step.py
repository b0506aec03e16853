"""The pure, jit-able train step: gradients for the trainable dict only.

Batches are seqio `EncDecFeatureConverter` outputs (`runtime.forward`), optionally with
`prompt_ids` `[batch]` for a prompt table.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax
import jax
import jax.numpy as jnp
import optax

from prompt_tuning.model import Transformer
from prompt_tuning.runtime import forward
from prompt_tuning.training import losses, trainable

Array = jax.Array
PyTree = Any
Batch = Mapping[str, Array]


@flax.struct.dataclass
class TrainState:
    """Everything a step changes: the step count, the trainable dict and its optimizer state.

    The frozen parameters are not here: they never change and are never saved with the run.
    """

    step: Array
    params: dict[str, Array]
    opt_state: optax.OptState

    @classmethod
    def create(cls, params: dict[str, Array], optimizer: optax.GradientTransformation
               ) -> "TrainState":
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))


def make_train_step(model: Transformer, optimizer: optax.GradientTransformation,
                    loss_config: losses.LossConfig = losses.LossConfig()
                    ) -> Callable[[TrainState, PyTree, Batch, Array], tuple[TrainState, dict]]:
    """`train_step(state, frozen_params, batch, dropout_rng) -> (state, metrics)`.

    `dropout_rng` should depend only on the seed and the step (e.g. `fold_in(seed_rng, step)`),
    so a resumed run draws the same dropout masks as an uninterrupted one.
    """

    def train_step(state: TrainState, frozen: PyTree, batch: Batch, dropout_rng: Array):
        def loss_fn(params):
            logits = forward.logits(model, trainable.merge(params, frozen), batch, dropout_rng)
            return losses.weighted_loss(logits, batch["decoder_target_tokens"],
                                        batch["decoder_loss_weights"], loss_config.z_loss,
                                        loss_config.loss_normalizing_factor)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # Checked here, in the step's own computation, so the loop needs no second device call
        # to know whether a checkpoint of the new params would be sound.
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))
        metrics = {**metrics, "loss": loss, "grad_norm": optax.global_norm(grads),
                   "params_finite": finite}
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return train_step
