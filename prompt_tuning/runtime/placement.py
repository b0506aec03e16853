"""Where a run's arrays live: the device mesh and the logical axis rules.

Training, evaluation, inference and scoring all run on one: the frozen model is read straight
onto its shardings (no host ever holds it whole), the prompt is replicated, batches are split
over 'data' (and so over hosts), and predictions come back whole to every host.

    placement = Placement.of(PartitioningConfig(num_partitions=2))
    frozen, shardings = placement.load_frozen(model_config)
    predict = placement.jit_predict(fn, shardings_of_params)
    tokens = placement.fetch(predict(params, placement.put_batch(numpy_batch)))
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import numpy as np
from jax.sharding import Mesh

from prompt_tuning import partitioning
from prompt_tuning.partitioning import LogicalRules, PartitioningConfig
from prompt_tuning.runtime.frozen_model import FrozenModel, ModelConfig, load_frozen_model

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Placement:
    """A device mesh and the logical axis rules that map the model's axes onto it."""

    mesh: Mesh
    rules: LogicalRules

    @classmethod
    def of(cls, config: PartitioningConfig) -> "Placement":
        return cls(config.mesh(), config.rules())

    @property
    def is_primary(self) -> bool:
        """Whether this process writes what a run writes once (results, exports, logs)."""
        import jax  # pylint: disable=import-outside-toplevel
        return jax.process_index() == 0

    def load_frozen(self, model: ModelConfig, check_vocabulary: bool = True,
                    compute_copy: bool = True) -> tuple[FrozenModel, PyTree]:
        """The frozen model, each parameter on its sharding, and those shardings
        (`compute_copy`: see `load_frozen_model`).

        With the architecture known in advance (a size gin file), every array is read straight
        onto its sharding; otherwise the checkpoint tells the architecture and is then placed.
        """
        if model.architecture is not None:
            architecture = model.runtime_config(model.architecture)
            per_layer = partitioning.param_shardings(architecture.replace(scan_layers=False),
                                                     self.mesh, self.rules)
            shardings = partitioning.param_shardings(architecture, self.mesh, self.rules)
            frozen = load_frozen_model(model, per_layer, check_vocabulary,
                                       scanned_shardings=shardings, compute_copy=compute_copy)
            return frozen, shardings
        frozen = load_frozen_model(model, check_vocabulary=check_vocabulary,
                                   compute_copy=compute_copy)
        shardings = partitioning.param_shardings(frozen.config, self.mesh, self.rules)
        frozen.params = partitioning.put_sharded(frozen.params, shardings)
        return frozen, shardings

    def replicated(self) -> Any:
        return partitioning.replicated(self.mesh)

    def with_replicated(self, shardings: PyTree, tree: Mapping[str, Any]) -> PyTree:
        """`shardings` plus a replicated sharding for every leaf of `tree` (e.g. the prompt)."""
        import jax  # pylint: disable=import-outside-toplevel
        return {**shardings, **jax.tree.map(lambda _: self.replicated(), dict(tree))}

    def place(self, tree: PyTree, shardings: PyTree) -> PyTree:
        """Host values (the same on every process) onto `shardings`."""
        return partitioning.put_sharded(tree, shardings)

    def check_batch_size(self, batch_size: int) -> None:
        partitioning.check_batch_size(batch_size, self.mesh)

    def jit_predict(self, fn: Callable[[PyTree, Mapping[str, Any]], Any], params_shardings: PyTree
                    ) -> partitioning.MeshFunction:
        """`fn(params, batch)` compiled for the mesh: the batch split over 'data', every
        output replicated (so each host can read it whole)."""
        return partitioning.jit_score_step(fn, self.mesh, params_shardings,
                                           partitioning.batch_sharding(self.mesh), self.rules,
                                           out_shardings=self.replicated())

    def put_batch(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """A whole batch that every host holds (eval and inference read every example on every
        host) as global arrays split over 'data'."""
        return partitioning.put_sharded(dict(batch), partitioning.batch_sharding(self.mesh))

    def fetch(self, tree: PyTree) -> PyTree:
        """Outputs as numpy, whole, on this host."""
        return partitioning.host_local(tree)
