"""Reading orbax PyTree checkpoints (ours and T5X's) by path, straight onto shardings.

Shapes come from the checkpoint's `_METADATA` first, so the architecture is checked before any
array is read. Arrays are then restored with `jax.ShapeDtypeStruct(shape, dtype, sharding=...)`
targets: orbax reads each device's shard itself and casts to the requested dtype.
Any failure of orbax/TensorStore on a damaged checkpoint becomes a one-line CheckpointError.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import numpy as np
from etils import epath
from flax import traverse_util

from prompt_tuning import stderr_guard
from prompt_tuning.checkpoints import source
from prompt_tuning.errors import CheckpointError

PyTree = Any


def _ocp():
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
    return ocp


def _damaged(directory: str, error: BaseException) -> CheckpointError:
    return CheckpointError(f"cannot read orbax checkpoint {directory} (truncated or damaged?): "
                           f"{source.describe_error(error)}")


def tree_metadata(directory: str) -> PyTree:
    """The nested tree of `ArrayMetadata` (shape, dtype) leaves of an orbax PyTree directory."""
    ocp = _ocp()
    try:
        with stderr_guard.silenced_if_failing():
            metadata = ocp.PyTreeCheckpointHandler().metadata(epath.Path(directory))
    except Exception as e:  # orbax raises many types on damaged files; all mean "cannot read"
        raise _damaged(directory, e) from e
    return metadata.tree


def _restore(directory: str, args: Any) -> PyTree:
    """A partial PyTree restore; any failure to read is a one-line CheckpointError."""
    ocp = _ocp()
    try:
        with stderr_guard.silenced_if_failing():
            return ocp.Checkpointer(ocp.PyTreeCheckpointHandler()).restore(
                epath.Path(directory), args=args)
    except Exception as e:  # see tree_metadata
        raise _damaged(directory, e) from e


def flat_shapes(tree: Mapping[str, Any]) -> dict[str, jax.ShapeDtypeStruct]:
    """{'/'-joined path: ShapeDtypeStruct} for the array leaves of a metadata tree."""
    flat = traverse_util.flatten_dict(dict(tree), sep="/")
    return {k: jax.ShapeDtypeStruct(tuple(v.shape), np.dtype(v.dtype)) for k, v in flat.items()
            if hasattr(v, "shape") and hasattr(v, "dtype")}


def _default_sharding() -> jax.sharding.Sharding:
    return jax.sharding.SingleDeviceSharding(jax.devices()[0])


def restore_arrays(directory: str, shapes: Mapping[str, jax.ShapeDtypeStruct],
                   shardings: source.FlatShardings, dtype: Optional[np.dtype],
                   prefix: str = "") -> dict[str, jax.Array]:
    """{path: jax.Array} for `shapes`' paths (under `prefix/` in the checkpoint tree).

    Only these paths are read (`partial_restore`), e.g. T5X's `target` without its optimizer
    state. Each array lands on `shardings[path]` (default: the first device) in `dtype`
    (default: as stored).
    """
    ocp = _ocp()
    targets, restore_args = {}, {}
    for path, struct in shapes.items():
        sharding = shardings.get(path) or _default_sharding()
        key = tuple(f"{prefix}/{path}".strip("/").split("/"))
        target_dtype = struct.dtype if dtype is None else np.dtype(dtype)
        targets[key] = jax.ShapeDtypeStruct(struct.shape, target_dtype, sharding=sharding)
        restore_args[key] = ocp.ArrayRestoreArgs(sharding=sharding, global_shape=struct.shape,
                                                 dtype=target_dtype)
    args = ocp.args.PyTreeRestore(item=traverse_util.unflatten_dict(targets),
                                  restore_args=traverse_util.unflatten_dict(restore_args),
                                  partial_restore=True)
    restored = _restore(directory, args)
    flat = traverse_util.flatten_dict(restored)
    return {path: flat[tuple(f"{prefix}/{path}".strip("/").split("/"))] for path in shapes}


def restore_numpy(directory: str, path: str) -> np.ndarray:
    """One (small) array of an orbax PyTree as numpy, e.g. a prompt or a step counter."""
    ocp = _ocp()
    key = tuple(path.split("/"))
    args = ocp.args.PyTreeRestore(
        item=traverse_util.unflatten_dict({key: np.zeros(())}),
        restore_args=traverse_util.unflatten_dict({key: ocp.RestoreArgs(restore_type=np.ndarray)}),
        partial_restore=True)
    restored = _restore(directory, args)
    return np.asarray(traverse_util.flatten_dict(restored)[key])
