"""`train --dry_run`: the real train step compiled for the run's mesh from shapes alone
(`runtime.memory` has the machinery and its caveats)."""

from __future__ import annotations

import jax

from prompt_tuning import partitioning
from prompt_tuning.data.features import FEATURES
from prompt_tuning.runtime import Placement, memory
from prompt_tuning.training import optim, step as step_lib, trainable
from prompt_tuning.training.config import TrainConfig


def train_step_memory(config: TrainConfig, placement: Placement) -> memory.ProgramMemory:
    """What one device holds while `config`'s train step runs (microbatches included)."""
    mesh, rules = placement.mesh, placement.rules
    partitioning.check_batch_size(config.train_dataset.batch_size, mesh)
    model = memory.abstract_model(config.model, config.prompt, placement)
    paths = trainable.trainable_paths(model.params, config.prompt.trainable)
    trained, frozen = trainable.split(model.params, paths)
    frozen_shardings = partitioning.frozen_shardings(model.shardings, paths)
    tx = optim.adafactor(config.optimizer)
    state = jax.eval_shape(lambda p: step_lib.TrainState.create(p, tx), trained)
    state_shardings = partitioning.state_shardings(state, mesh)
    state = memory.on(state, state_shardings)
    lengths = config.train_dataset.task_feature_lengths
    size = config.train_dataset.batch_size
    batch_sharding = partitioning.batch_sharding(mesh)
    batch = memory.abstract_batch(
        {name: (size, lengths["inputs" if name == "encoder_input_tokens" else "targets"])
         for name in FEATURES}, batch_sharding)
    rng = jax.ShapeDtypeStruct((2,), jax.numpy.uint32, sharding=partitioning.replicated(mesh))
    train_step = partitioning.jit_train_step(
        step_lib.make_train_step(model.net, tx, config.loss, config.num_microbatches), mesh,
        state_shardings, frozen_shardings, batch_sharding, rules)
    parts = {"frozen parameters": memory.per_device(frozen),
             "trained parameters": memory.per_device(state.params),
             "optimizer state": memory.per_device(state.opt_state),
             "batch": memory.per_device(batch)}
    return memory.program_memory("train step", train_step, (state, frozen, batch, rng), parts)
