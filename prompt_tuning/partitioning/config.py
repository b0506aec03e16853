"""How a run is laid out over its devices, as T5X's partitioner arguments (gin-bindable)."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from jax.sharding import Mesh

from prompt_tuning import errors
from prompt_tuning.partitioning.mesh import create_mesh
from prompt_tuning.partitioning.rules import LogicalRules, standard_logical_axis_rules


@dataclasses.dataclass(frozen=True)
class PartitioningConfig:
    """T5X's `PjitPartitioner` settings.

    Attributes:
      num_partitions: devices per model replica (the 'model' mesh axis, `NUM_PARTITIONS`);
        the remaining factor of the device count is data parallelism.
      activation_partitioning_dims, parameter_partitioning_dims: 1 or 2, as in T5X (2 also splits
        `embed`; for the largest models).
      additional_rules: logical axis rules tried before the standard ones, e.g.
        `[("embed", "data")]` for 2-D parameter sharding.
    """

    num_partitions: int = 1
    activation_partitioning_dims: int = 1
    parameter_partitioning_dims: int = 1
    additional_rules: Optional[Any] = ()

    def __post_init__(self):
        if type(self.num_partitions) is not int or self.num_partitions < 1:
            raise errors.UsageError(f"NUM_PARTITIONS must be a positive integer, got "
                                    f"{self.num_partitions!r}.")
        self.rules()  # the dims and the rules themselves are checked there

    def mesh(self) -> Mesh:
        return create_mesh(self.num_partitions)

    def rules(self) -> LogicalRules:
        return standard_logical_axis_rules(self.activation_partitioning_dims,
                                           self.parameter_partitioning_dims,
                                           tuple(self.additional_rules or ()))
