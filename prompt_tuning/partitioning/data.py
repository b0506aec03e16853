"""Multi-host batches: which slice of the global batch each host feeds, and back to numpy.

Each host reads `batch_size // num_shards` examples (its shard of the data pipeline, e.g.
`seqio.ShardInfo(shard_id, num_shards)`) and `global_batch` stitches the hosts' slices into one
global `jax.Array` split over the mesh's 'data' axis, without any host holding the whole batch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from prompt_tuning import errors
from prompt_tuning.partitioning.shardings import batch_sharding

PyTree = Any


@dataclasses.dataclass(frozen=True)
class DataLayout:
    """This host's part of the data (T5X's `DataLayout`).

    Attributes:
      shard_id: which slice of the global batch this host feeds, in [0, num_shards).
      num_shards: how many distinct slices the hosts feed; hosts whose devices hold the same
        'data' rows (a model replica spread over hosts) feed the same slice.
    """

    shard_id: int
    num_shards: int


def _rows_by_process(mesh: Mesh) -> dict[int, tuple[int, ...]]:
    """For each process, the 'data' indices (rows) its devices occupy."""
    if "data" not in mesh.shape:
        raise ValueError(f"The mesh needs a 'data' axis for batches, got axes {mesh.axis_names}.")
    grid = np.moveaxis(mesh.devices, mesh.axis_names.index("data"), 0)
    grid = grid.reshape(mesh.shape["data"], -1)
    rows: dict[int, set[int]] = {}
    for row, devices in enumerate(grid):
        for device in devices:
            rows.setdefault(device.process_index, set()).add(row)
    return {p: tuple(sorted(r)) for p, r in rows.items()}


def data_layout(mesh: Mesh) -> DataLayout:
    """Which slice of each global batch this process feeds (meshes from `create_mesh` qualify)."""
    rows = _rows_by_process(mesh)
    blocks = sorted(set(rows.values()))
    for block in blocks:
        if block != tuple(range(block[0], block[0] + len(block))) or len(block) != len(blocks[0]):
            raise ValueError("Each process's devices must hold an equal, contiguous range of the "
                             f"mesh's 'data' rows, got {rows}; build the mesh with create_mesh().")
    if len({r for block in blocks for r in block}) != sum(len(b) for b in blocks):
        raise ValueError(f"Processes hold overlapping but different 'data' rows: {rows}.")
    mine = rows.get(jax.process_index())
    if mine is None:
        raise ValueError(f"Process {jax.process_index()} has no device in the mesh, so it cannot "
                         "feed data.")
    return DataLayout(shard_id=blocks.index(mine), num_shards=len(blocks))


def _check_divisible(batch_size: int, mesh: Mesh, detail: str = "") -> None:
    if "data" not in mesh.shape:
        raise ValueError(f"The mesh needs a 'data' axis for batches, got axes {mesh.axis_names}.")
    num_data = mesh.shape["data"]
    if batch_size % num_data:
        raise errors.UsageError(f"batch size {batch_size}{detail} is not divisible by the {num_data} "
                         f"data-parallel devices (mesh {dict(mesh.shape)}).")


def check_batch_size(batch_size: int, mesh: Mesh) -> int:
    """Validates a global batch size for the mesh; returns the examples each host feeds."""
    if type(batch_size) is not int or batch_size <= 0:
        raise errors.UsageError(f"batch size must be a positive integer, got {batch_size!r}.")
    _check_divisible(batch_size, mesh)
    return batch_size // data_layout(mesh).num_shards


def global_batch(local_batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """This host's `[local_batch, ...]` arrays -> global `[batch, ...]` arrays split over 'data'.

    Every host calls this with its own slice (see `data_layout`), all slices the same size;
    the global batch is `local_batch * num_shards`.
    """
    if not isinstance(local_batch, Mapping) or not local_batch:
        raise ValueError("global_batch expects a non-empty dict of arrays, got "
                         f"{type(local_batch).__name__}.")
    arrays = {k: np.asarray(v) for k, v in local_batch.items()}
    sizes = {k: (v.shape[0] if v.ndim else None) for k, v in arrays.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise ValueError(f"Every feature must have the same leading batch dimension, got {sizes}.")
    local = next(iter(sizes.values()))
    if local == 0:
        raise ValueError("global_batch got an empty batch (leading dimension 0).")
    layout = data_layout(mesh)
    size = local * layout.num_shards
    hosts = f" ({local} per host x {layout.num_shards} hosts)" if layout.num_shards > 1 else ""
    _check_divisible(size, mesh, hosts)
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, v, (size, *v.shape[1:]))
            for k, v in arrays.items()}


def _to_host(x: Any) -> np.ndarray:
    if not isinstance(x, jax.Array):
        return np.asarray(x)
    if x.is_fully_addressable:
        return np.asarray(jax.device_get(x))
    if x.is_fully_replicated:
        return np.asarray(x.addressable_data(0))
    # Pieces live on other hosts: gather them (a collective, every process must call it).
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def host_local(tree: PyTree) -> PyTree:
    """Every leaf as a whole numpy array on this host, e.g. the prompt for export.

    Replicated and fully addressable arrays are read locally; others are gathered with
    `process_allgather`, so then all processes must call `host_local` together.
    """
    return jax.tree.map(_to_host, tree)
