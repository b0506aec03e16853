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
                    loss_config: losses.LossConfig = losses.LossConfig(),
                    num_microbatches: int = 1
                    ) -> Callable[[TrainState, PyTree, Batch, Array], tuple[TrainState, dict]]:
    """`train_step(state, frozen_params, batch, dropout_rng) -> (state, metrics)`.

    `dropout_rng` should depend only on the seed and the step (e.g. `fold_in(seed_rng, step)`),
    so a resumed run draws the same dropout masks as an uninterrupted one.

    With `num_microbatches` > 1 the batch is split into that many slices, whose gradients are
    summed one after the other (T5X's microbatching): the same update as the whole batch at
    once (dropout aside, whose masks then follow the slices), with a fraction of the
    activation memory.
    """
    if not isinstance(num_microbatches, int) or num_microbatches < 1:
        raise ValueError(f"num_microbatches must be a positive integer, got {num_microbatches!r}.")

    def summed_loss(params, frozen: PyTree, batch: Batch, dropout_rng: Array):
        """The loss summed over target tokens (normalised later, over the whole batch)."""
        logits = forward.logits(model, trainable.merge(params, frozen), batch, dropout_rng)
        return losses.weighted_loss(logits, batch["decoder_target_tokens"],
                                    batch["decoder_loss_weights"], loss_config.z_loss, None)

    def grads_and_metrics(params, frozen: PyTree, batch: Batch, dropout_rng: Array):
        grad_fn = jax.value_and_grad(summed_loss, has_aux=True)
        if num_microbatches == 1:
            (loss, metrics), grads = grad_fn(params, frozen, batch, dropout_rng)
            return grads, {**metrics, "loss": loss}
        # Microbatch m takes rows m, m + M, m + 2M, ...: with the batch split over 'data' in
        # contiguous blocks, every device keeps an equal share of every microbatch, so the
        # slicing moves no data between devices.
        slices = jax.tree.map(
            lambda x: x.reshape(x.shape[0] // num_microbatches, num_microbatches,
                                *x.shape[1:]).swapaxes(0, 1),
            dict(batch))

        def accumulate(total, inputs):
            index, microbatch = inputs
            (loss, metrics), grads = grad_fn(params, frozen, microbatch,
                                             jax.random.fold_in(dropout_rng, index))
            return jax.tree.map(jnp.add, total, (grads, {**metrics, "loss": loss})), None

        zero = jnp.zeros((), jnp.float32)
        first = (jax.tree.map(jnp.zeros_like, params),
                 {"cross_entropy": zero, "z_loss": zero, "num_tokens": zero, "loss": zero})
        (grads, metrics), _ = jax.lax.scan(accumulate, first,
                                           (jnp.arange(num_microbatches), slices))
        return grads, metrics

    def train_step(state: TrainState, frozen: PyTree, batch: Batch, dropout_rng: Array):
        grads, metrics = grads_and_metrics(state.params, frozen, batch, dropout_rng)
        scale = losses.normalizer(loss_config.loss_normalizing_factor, metrics["num_tokens"])
        grads = jax.tree.map(lambda g: g / scale, grads)
        loss = metrics["loss"] / scale
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # Checked here, in the step's own computation, so the loop needs no second device call
        # to know whether a checkpoint of the new params would be sound.
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))
        metrics = {**metrics, "loss": loss, "grad_norm": optax.global_norm(grads),
                   "params_finite": finite}
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return train_step
