"""The ('data', 'model') device mesh, as T5X's `PjitPartitioner(num_partitions=...)` builds it.

The model axis is a group of `num_partitions` devices chosen by JAX's `mesh_utils`, which knows
the physical topology of TPU slices; T5X's `model_parallel_submesh=(x, y, z, c)` sets the size of
that group (`PartitioningConfig`), not its exact tile. Out of scope: the `replica`/DCN axes of
`ici_mesh_shape`/`dcn_mesh_shape`.
"""

from __future__ import annotations

import collections
from typing import Optional, Sequence

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh

from prompt_tuning import errors

MESH_AXES = ("data", "model")


def _check_num_partitions(num_partitions: int, num_devices: int) -> None:
    if type(num_partitions) is not int or num_partitions < 1:
        raise errors.UsageError(
            f"num_partitions must be a positive integer, got {num_partitions!r}.")
    if num_devices % num_partitions:
        raise errors.UsageError(
            f"num_partitions {num_partitions} (the model axis) does not divide the {num_devices} "
            "devices; choose a divisor of the device count.")


def _devices_by_process(devices: Sequence[jax.Device]) -> dict[int, list[jax.Device]]:
    by_process: dict[int, list[jax.Device]] = collections.defaultdict(list)
    for device in devices:
        by_process[device.process_index].append(device)
    return dict(sorted(by_process.items()))


def _device_grid(devices: Sequence[jax.Device], num_partitions: int) -> np.ndarray:
    """[data, model] array of devices; each process owns a contiguous block of data rows."""
    num_data = len(devices) // num_partitions
    by_process = _devices_by_process(devices)
    if len(by_process) == 1:
        # Topology-aware on TPU; plain order on CPU/GPU.
        return mesh_utils.create_device_mesh((num_data, num_partitions), list(devices))
    per_process = {len(d) for d in by_process.values()}
    if len(per_process) != 1:
        raise ValueError("Every process must contribute the same number of devices to the mesh, "
                         f"got {sorted(len(d) for d in by_process.values())}.")
    local = per_process.pop()
    if local % num_partitions == 0:
        # Each host holds whole model groups: its devices form `local // num_partitions` rows.
        return mesh_utils.create_hybrid_device_mesh(
            (local // num_partitions, num_partitions), (len(by_process), 1), list(devices),
            process_is_granule=True)
    if num_partitions % local == 0:
        # A model group spans whole hosts; those hosts share data rows (and feed the same data).
        ordered = [d for group in by_process.values() for d in sorted(group, key=lambda d: d.id)]
        return np.array(ordered, dtype=object).reshape(num_data, num_partitions)
    raise errors.UsageError(f"num_partitions {num_partitions} must divide, or be a multiple of, the "
                     f"{local} devices of each process.")


def create_mesh(num_partitions: int = 1,
                devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A `Mesh` with axes ('data', 'model') of shape (device_count // num_partitions, num_partitions).

    Args:
      num_partitions: devices per model replica (the 'model' axis); 1 is pure data parallelism.
      devices: the devices to use; default all global devices (`jax.devices()`, every process).
    Returns:
      A mesh with `Auto` axis types (GSPMD propagation, as T5X uses; `jax.make_mesh` would
      default to `Explicit`). Across processes the 'data' axis is process-contiguous, so each
      host's slice of the global batch lands on its own devices.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("create_mesh needs at least one device, got an empty device list.")
    _check_num_partitions(num_partitions, len(devices))
    return Mesh(_device_grid(devices, num_partitions), MESH_AXES)
