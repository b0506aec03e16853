"""One of the two processes of test_multi_process.py (2 CPU devices each, 4 in all).

    XLA_FLAGS=--xla_force_host_platform_device_count=2 \
        python -m tests.partitioning.two_processes_main PROCESS_ID PORT OUT.npz

Joins the 2-process JAX cluster, trains the tiny prompt on a (data 2, model 2) mesh spanning
both processes (each feeds its half of every batch through `global_batch`), and saves what it
sees to OUT.npz. Prints "ok <process id>".
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from prompt_tuning import partitioning
from tests.partitioning import tiny_run


def main(process_id: int, port: int, out_path: str) -> None:
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=process_id)
    assert jax.process_count() == 2 and jax.local_device_count() == 2, jax.devices()
    rules = partitioning.standard_logical_axis_rules()
    mesh = partitioning.create_mesh(num_partitions=2)
    layout = partitioning.data_layout(mesh)
    assert (layout.shard_id, layout.num_shards) == (process_id, 2), layout
    results, _, frozen = tiny_run.train_and_score(mesh, rules)
    kernel = frozen["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
    assert not kernel.is_fully_addressable  # the frozen model really spans both processes
    np.savez(out_path, **results)
    jax.distributed.shutdown()
    print("ok", process_id)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
