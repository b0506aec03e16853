"""Checksums of the arrays a run writes, recorded at write time and checked on every read.

A flipped byte inside a checkpoint's array data is not an error to orbax or TensorStore: the
array simply comes back with other values (a prompt of 1e26). So every array tree we save gets
a record `{path in the tree: {"sha256", "dtype", "shape"}}` written with it (in the same step
directory, committed by the same rename), and a reader compares what it restored with it.

The digest (`prompt_tuning.checksums`) covers the dtype, the shape and the C-order bytes, so
the same values give the same digest whatever device or host layout saved or restored them.
Checkpoints of the previous release have no record: they are read unverified (`recorded` gives
None).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import numpy as np

from prompt_tuning import checksums as checksums_lib

PyTree = Any
Digest = checksums_lib.Digest
FORMAT = 1


def host_array(value: Any) -> np.ndarray:
    """The whole array on this host: gathered from every host when it is sharded across them."""
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
        return np.asarray(multihost_utils.process_allgather(value, tiled=True))
    return np.asarray(jax.device_get(value))


def digest(value: Any) -> Digest:
    """{"sha256", "dtype", "shape"} of one array, wherever it lives (`checksums.digest`)."""
    return checksums_lib.digest(host_array(value))


def _name(path: tuple) -> str:
    """`['opt_state'][0]['v']['prompt/prompt']`: a leaf's path, the same whether the tree is
    the TrainState that was saved (attributes, tuples) or the nested dicts and lists a reader
    restores from the checkpoint's metadata."""
    parts = []
    for entry in path:
        for attribute in ("key", "name", "idx"):
            if hasattr(entry, attribute):
                parts.append(getattr(entry, attribute))
                break
        else:
            parts.append(str(entry))
    return "".join(f"[{part!r}]" for part in parts)


def checksums(tree: PyTree) -> dict[str, Digest]:
    """{path of each leaf: digest} of an array tree."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_name(path): digest(leaf) for path, leaf in leaves}


def record(trees: Mapping[str, PyTree]) -> dict[str, Any]:
    """The JSON record written beside `trees` ({item name: array tree})."""
    return {"format": FORMAT, "arrays": {name: checksums(tree) for name, tree in trees.items()}}


def recorded(data: Optional[Mapping[str, Any]], item: str) -> Optional[dict[str, Digest]]:
    """The checksums recorded for `item`, or None when there are none (an older checkpoint)."""
    if not data:
        return None
    return (data.get("arrays") or {}).get(item)


def mismatches(tree: PyTree, expected: Mapping[str, Digest]) -> list[str]:
    """Paths of the leaves of `tree` that differ from `expected` (missing or extra ones too)."""
    actual = checksums(tree)
    differ = [path for path, want in expected.items() if actual.get(path) != want]
    return differ + [path for path in actual if path not in expected]
