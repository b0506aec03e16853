"""How a run is laid out over its devices, as T5X's partitioner arguments (gin-bindable)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Sequence

from jax.sharding import Mesh

from prompt_tuning import errors
from prompt_tuning.partitioning.mesh import create_mesh
from prompt_tuning.partitioning.rules import (LogicalRules, check_rules,
                                              standard_logical_axis_rules)


@dataclasses.dataclass(frozen=True)
class PartitioningConfig:
    """T5X's `PjitPartitioner` settings.

    The 'model' axis (devices per model replica) comes from one of `num_partitions`,
    `model_parallel_submesh` (its size: T5X's `(x, y, z, core)` tile of TPU chips; the devices of
    each group are then laid out by JAX's `mesh_utils`, topology-aware on TPU) or `mesh_shape`;
    the rest of the devices is the 'data' axis.

    Attributes:
      num_partitions: devices per model replica (`NUM_PARTITIONS`).
      model_parallel_submesh: T5X's 4-tuple, e.g. `(4, 4, 1, 2)` for 32-way model parallelism.
      mesh_shape: `(data, model)`, explicit; `data` may be -1 (the devices left).
      activation_partitioning_dims, parameter_partitioning_dims: 1 or 2, as in T5X;
        `parameter_partitioning_dims=2` also splits the weights' `embed` over 'data' (2-D
        parameter sharding, for the largest models).
      additional_rules: logical axis rules tried before the standard ones, e.g.
        `[("embed", "data")]`.
      logical_axis_rules: T5X's argument: the whole rule list, e.g.
        `@partitioning.standard_logical_axis_rules()` with its own gin bindings; given, it
        replaces the three settings above.

    In gin it is also `partitioning.PjitPartitioner` (and `ModelBasedPjitPartitioner`), T5X's
    names: `partitioning.PjitPartitioner.num_partitions = 8` binds this class.
    """

    num_partitions: int = 1
    model_parallel_submesh: Optional[Sequence[int]] = None
    mesh_shape: Optional[Sequence[int]] = None
    activation_partitioning_dims: int = 1
    parameter_partitioning_dims: int = 1
    additional_rules: Optional[Any] = ()
    logical_axis_rules: Optional[Any] = None

    def __post_init__(self):
        if type(self.num_partitions) is not int or self.num_partitions < 1:
            raise errors.UsageError(f"NUM_PARTITIONS must be a positive integer, got "
                                    f"{self.num_partitions!r}.")
        given = [name for name in ("model_parallel_submesh", "mesh_shape")
                 if getattr(self, name) is not None] + (
                     ["num_partitions"] if self.num_partitions != 1 else [])
        if len(given) > 1:
            raise errors.UsageError(f"give one of num_partitions, model_parallel_submesh and "
                                    f"mesh_shape, not {' and '.join(given)}.")
        if self.model_parallel_submesh is not None:
            submesh = tuple(self.model_parallel_submesh)
            if len(submesh) != 4 or not all(type(n) is int and n >= 1 for n in submesh):
                raise errors.UsageError(f"model_parallel_submesh must be 4 positive integers "
                                        f"(x, y, z, core), got {self.model_parallel_submesh!r}.")
            object.__setattr__(self, "model_parallel_submesh", submesh)
        if self.mesh_shape is not None:
            shape = tuple(self.mesh_shape)
            if len(shape) != 2 or not all(type(n) is int for n in shape) or shape[1] < 1 or (
                    shape[0] < 1 and shape[0] != -1):
                raise errors.UsageError(f"mesh_shape must be (data, model) positive integers "
                                        f"(data may be -1), got {self.mesh_shape!r}.")
            object.__setattr__(self, "mesh_shape", shape)
        self.rules()  # the dims and the rules themselves are checked there

    @property
    def model_parallelism(self) -> int:
        """Devices per model replica (the 'model' axis)."""
        if self.mesh_shape is not None:
            return self.mesh_shape[1]
        if self.model_parallel_submesh is not None:
            return math.prod(self.model_parallel_submesh)
        return self.num_partitions

    def mesh(self, devices: Optional[Sequence[Any]] = None) -> Mesh:
        """The ('data', 'model') mesh over `devices` (default: every device of every host)."""
        import jax  # pylint: disable=import-outside-toplevel

        devices = list(jax.devices() if devices is None else devices)
        if self.mesh_shape is not None and self.mesh_shape[0] != -1 and (
                self.mesh_shape[0] * self.mesh_shape[1] != len(devices)):
            raise errors.UsageError(f"mesh_shape {self.mesh_shape} needs "
                                    f"{self.mesh_shape[0] * self.mesh_shape[1]} devices, but "
                                    f"there are {len(devices)}.")
        return create_mesh(self.model_parallelism, devices)

    def rules(self) -> LogicalRules:
        if self.logical_axis_rules is not None:
            if (self.activation_partitioning_dims, self.parameter_partitioning_dims) != (1, 1) \
                    or self.additional_rules:
                raise errors.UsageError(
                    "give logical_axis_rules, or activation_partitioning_dims, "
                    "parameter_partitioning_dims and additional_rules, not both.")
            return check_rules(self.logical_axis_rules)
        return standard_logical_axis_rules(self.activation_partitioning_dims,
                                           self.parameter_partitioning_dims,
                                           tuple(self.additional_rules or ()))


# T5X's names for the same settings, so its gin lines bind them unchanged (gin knows one
# configurable by whichever name it meets first).
PjitPartitioner = PartitioningConfig
ModelBasedPjitPartitioner = PartitioningConfig
