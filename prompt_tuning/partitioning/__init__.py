"""Partitioning the T5X way: logical axis rules, a ('data', 'model') mesh, shardings and
multi-host batches.

Typical use::

    mesh = create_mesh(num_partitions)
    rules = standard_logical_axis_rules()
    shardings = param_shardings(model, mesh, rules)
    step = jit_train_step(make_train_step(model, tx), mesh, state_shardings(state, mesh),
                          frozen_shardings(shardings, paths), batch_sharding(mesh), rules)
    state, metrics = step(state, frozen, global_batch(local_numpy_batch, mesh), rng)
"""

from prompt_tuning.partitioning.config import (ModelBasedPjitPartitioner, PartitioningConfig,
                                               PjitPartitioner)
from prompt_tuning.partitioning.data import (DataLayout, check_batch_size, data_layout,
                                             global_batch, host_local)
from prompt_tuning.partitioning.mesh import MESH_AXES, create_mesh
from prompt_tuning.partitioning.rules import (PROMPT_RULES, LogicalRules,
                                              standard_logical_axis_rules)
from prompt_tuning.partitioning.shardings import (batch_sharding, flat_shardings,
                                                  frozen_shardings, init_sharded_params,
                                                  param_shardings, put_sharded, replicated,
                                                  shard_train_state, state_shardings)
from prompt_tuning.partitioning.steps import MeshFunction, jit_score_step, jit_train_step

__all__ = ["PartitioningConfig", "PjitPartitioner", "ModelBasedPjitPartitioner", "DataLayout",
           "check_batch_size", "data_layout", "global_batch", "host_local", "MESH_AXES",
           "create_mesh", "PROMPT_RULES", "LogicalRules", "standard_logical_axis_rules",
           "batch_sharding", "flat_shardings", "frozen_shardings", "init_sharded_params",
           "param_shardings", "put_sharded", "replicated", "shard_train_state", "state_shardings",
           "MeshFunction", "jit_score_step", "jit_train_step"]
