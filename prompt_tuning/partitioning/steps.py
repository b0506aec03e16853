"""Train and score steps compiled for a mesh: `jax.jit` with explicit in/out shardings.

The returned callables trace and run inside `jax.set_mesh(mesh)` and the logical axis rules,
so the model's activation constraints (`nn.with_logical_constraint(x, ("batch", "length",
"embed"))`) take effect, as under T5X's `PjittedFnWithContext`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
from jax.sharding import Mesh, Sharding

from prompt_tuning.partitioning.rules import LogicalRules
from prompt_tuning.partitioning.shardings import replicated

PyTree = Any


class MeshFunction:
    """A jitted function that always runs (and traces) under its mesh and axis rules."""

    def __init__(self, jitted: Any, mesh: Mesh, rules: Optional[LogicalRules]):
        self._jitted = jitted
        self.mesh = mesh
        self.rules = list(rules or ())

    def __call__(self, *args, **kwargs):
        with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
            return self._jitted(*args, **kwargs)

    def lower(self, *args, **kwargs):
        """`jax.jit(...).lower` under the same context, e.g. for `.compile().memory_analysis()`."""
        with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
            return self._jitted.lower(*args, **kwargs)

    def compiled(self, *args, **kwargs) -> "MeshFunction":
        """The same function compiled now for arguments shaped like these (ahead of its first
        call, e.g. to free the compiler's memory before the program's own buffers exist); it
        then accepts only arguments of these shapes, dtypes and shardings."""
        return MeshFunction(self.lower(*args, **kwargs).compile(), self.mesh, self.rules)


def jit_train_step(train_step: Callable, mesh: Mesh, state_shardings: PyTree,
                   frozen_shardings: PyTree, batch_sharding: Sharding,
                   rules: Optional[LogicalRules] = None) -> MeshFunction:
    """`train_step(state, frozen_params, batch, dropout_rng) -> (state, metrics)` on the mesh.

    The state argument is donated (its buffers are reused for the new state, so do not use the
    old state after the call); the frozen params are not. Metrics come back replicated.

    Args:
      train_step: from `training.step.make_train_step`.
      mesh: the device mesh.
      state_shardings: from `state_shardings(state, mesh)`.
      frozen_shardings: the frozen params' shardings (`frozen_shardings(param_shardings(...),
        trainable_paths)`).
      batch_sharding: usually `batch_sharding(mesh)`, for every `[batch, length]` feature.
      rules: the logical axis rules, for the model's activation constraints.
    """
    everywhere = replicated(mesh)
    jitted = jax.jit(train_step,
                     in_shardings=(state_shardings, frozen_shardings, batch_sharding, everywhere),
                     out_shardings=(state_shardings, everywhere),
                     donate_argnums=(0,))
    return MeshFunction(jitted, mesh, rules)


def jit_score_step(score_step: Callable, mesh: Mesh, params_shardings: PyTree,
                   batch_sharding: Sharding, rules: Optional[LogicalRules] = None,
                   out_shardings: Optional[PyTree] = None) -> MeshFunction:
    """`score_step(params, batch) -> per-example outputs` on the mesh (nothing donated).

    Outputs are split over 'data' like the batch (`[batch, ...]`) unless `out_shardings` says
    otherwise; read them on every host with `host_local`.
    """
    jitted = jax.jit(score_step, in_shardings=(params_shardings, batch_sharding),
                     out_shardings=batch_sharding if out_shardings is None else out_shardings)
    return MeshFunction(jitted, mesh, rules)
