"""T5X legacy checkpoints: a msgpack `checkpoint` file and one zarr directory per large array.

Layout (t5x/checkpoints.py `Checkpointer.save`; e.g. the public
gs://t5-data/pretrained_models/t5x/t5_1_1_lm100k_*/checkpoint_1100000):

  checkpoint_<step>/checkpoint
      flax.serialization msgpack of {"version": 3, "optimizer": {"target": params,
      "state": {"step": int32, "param_states": {...Adafactor v_row/v_col/v/m...}}}}
  checkpoint_<step>/target.encoder.layers_0.attention.query.kernel/   zarr v2: .zarray + gzip chunks

In the msgpack, small arrays are inline (flax ext type 1: shape, dtype name, raw bytes); large
ones are replaced by the JSON of their TensorStore spec, e.g. `{"driver": "zarr", "dtype":
"bfloat16", "kvstore": {"driver": "gcs", "bucket": "t5x-dummy-bucket", "path":
"target.encoder.layers_0.attention.query.kernel/"}, "metadata": {"chunks": [...], "compressor":
{"id": "gzip"}, "shape": [...]}}`. The path is relative to the step directory and the bucket a
placeholder (older checkpoints record a "file"/"gfile" kvstore or a top-level "path"), so we always
read the zarr directory of that name next to the `checkpoint` file; dtype and shape come from its
`.zarray`. Optimizer state is ignored. A reference prompt-tuning checkpoint also holds
`target/encoder/prompt/prompt/prompt [P, embed]`, returned as the prompt.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import msgpack
import numpy as np
from flax import serialization

from prompt_tuning.checkpoints import source
from prompt_tuning.checkpoints.formats import LEGACY_FILE, T5X_LEGACY, step_from_dir_name
from prompt_tuning import filesystem
from prompt_tuning.errors import CheckpointError

_SPEC_KEYS = {"driver", "kvstore"}


def read_msgpack(path: str) -> dict:
    """The checkpoint file's tree; inline arrays decoded, TensorStore specs left as dicts."""
    try:
        contents = serialization.msgpack_restore(filesystem.read_bytes(path))
    except (OSError, ValueError, TypeError, KeyError, msgpack.UnpackException) as e:
        raise CheckpointError(f"cannot read T5X checkpoint file {path} (truncated or not "
                              f"msgpack?): {source.describe_error(e)}") from e
    if not isinstance(contents, dict):
        raise CheckpointError(f"T5X checkpoint file {path} holds a {type(contents).__name__}, "
                              "not a dict.")
    return contents


def _optimizer_state(contents: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    version = contents.get("version", 0)
    if "optimizer" in contents:
        optimizer = contents["optimizer"]
    elif version == 0 and "target" in contents:  # a bare flax optimizer state dict
        optimizer = contents
    else:
        raise CheckpointError(f"T5X checkpoint file {path} has no optimizer/target "
                              f"(top-level keys {sorted(contents)}, version {version}).")
    if not isinstance(optimizer, Mapping) or not isinstance(optimizer.get("target"), Mapping):
        raise CheckpointError(f"T5X checkpoint file {path} has no optimizer/target parameters.")
    return optimizer


def is_ts_spec(value: Any) -> bool:
    return isinstance(value, Mapping) and _SPEC_KEYS <= set(value)


def flatten_target(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'/'-joined path: inline array or TensorStore spec dict}; specs are leaves."""
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and not is_ts_spec(value):
            flat.update(flatten_target(value, path + "/"))
        elif value is not None:
            flat[path] = value
    return flat


def zarr_dir_name(spec: Mapping[str, Any]) -> str:
    """The zarr directory a spec names: the last component of its (kvstore) path.

    T5X names the directory after the dotted parameter path and records it relative to the step
    directory; taking the last component also copes with absolute or `gs://` forms.
    """
    kvstore = spec.get("kvstore")
    parts = [str(spec.get("path", ""))]
    if isinstance(kvstore, Mapping):
        parts.insert(0, str(kvstore.get("path", "")))
    elif isinstance(kvstore, str):  # URL form, e.g. "gs://bucket/dir/target.x.kernel/"
        parts.insert(0, kvstore)
    components = [c for p in parts for c in p.split("/") if c]
    if not components:
        raise CheckpointError(f"TensorStore spec names no path: {dict(spec)}")
    return components[-1]


def _check_all_chunks_present(name: str, directory: str, metadata: Mapping[str, Any]) -> None:
    # zarr reads a missing chunk as fill value, so an interrupted copy of a checkpoint would load
    # silently as zeros; t5x writes every chunk, so a missing one means an incomplete copy.
    counts = [-(-size // chunk) for size, chunk in zip(metadata["shape"], metadata["chunks"])]
    separator = metadata.get("dimension_separator", ".")
    present = set(filesystem.listdir(directory))
    keys = (separator.join(map(str, index)) or "0" for index in np.ndindex(*counts))
    missing = [key for key in keys
               if key not in present and not filesystem.isfile(filesystem.join(directory, key))]
    if missing:
        raise CheckpointError(f"{name} is missing {len(missing)} of {int(np.prod(counts))} chunk "
                              f"files in {directory} (e.g. {missing[0]}): an incomplete copy?")


def _kvstore(directory: str) -> Any:
    """TensorStore's key-value store for a local directory or a gs:// prefix."""
    if filesystem.is_remote(directory):
        return directory.rstrip("/") + "/"  # TensorStore's URL form: its GCS driver
    return {"driver": "file", "path": directory}


class ZarrArray:
    """A zarr array read slice by slice with TensorStore (see `source.SliceableArray`)."""

    def __init__(self, name: str, directory: str):
        import tensorstore as ts  # pylint: disable=import-outside-toplevel

        self.name = name
        try:
            self._store = ts.open({"driver": "zarr", "kvstore": _kvstore(directory)},
                                  open=True, read=True).result()
        except ValueError as e:
            raise CheckpointError(f"cannot open {name} at {directory} (missing or damaged zarr "
                                  f"array?): {source.describe_error(e)}") from e
        self.shape = tuple(int(d) for d in self._store.shape)
        self.dtype = np.dtype(self._store.dtype.numpy_dtype)
        _check_all_chunks_present(name, directory, self._store.spec().to_json()["metadata"])

    def __getitem__(self, index: Any) -> np.ndarray:
        try:
            return np.asarray(self._store[index].read().result())
        except ValueError as e:
            raise CheckpointError(f"cannot read {self.name} (truncated or damaged zarr chunk?): "
                                  f"{source.describe_error(e)}") from e


def _leaf(name: str, value: Any, step_dir: str) -> source.SliceableArray:
    if is_ts_spec(value):
        zarr = ZarrArray(name, filesystem.join(step_dir, zarr_dir_name(value)))
        shape = value.get("metadata", {}).get("shape")
        if shape is not None and tuple(shape) != zarr.shape:
            raise CheckpointError(f"{name}: the checkpoint file says {tuple(shape)} but its zarr "
                                  f"array is {zarr.shape}.")
        return zarr
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    raise CheckpointError(f"{name} in the T5X checkpoint is a {type(value).__name__}, "
                          "neither an array nor a TensorStore spec.")


def _step(optimizer: Mapping[str, Any], step_dir: str) -> Optional[int]:
    state = optimizer.get("state")
    step = state.get("step") if isinstance(state, Mapping) else None
    if isinstance(step, (np.ndarray, np.generic, int)) and np.size(step) == 1:
        return int(np.asarray(step).reshape(()))
    return step_from_dir_name(step_dir)


def open_t5x_legacy(step_dir: str) -> source.OpenedCheckpoint:
    """Opens `checkpoint_<step>/` (see module doc); zarr arrays are read only by `read`."""
    file = filesystem.join(step_dir, LEGACY_FILE)
    optimizer = _optimizer_state(read_msgpack(file), file)
    flat = flatten_target(optimizer["target"])
    leaves = {name: _leaf(name, value, step_dir) for name, value in flat.items()}
    prompt_leaf = leaves.pop(source.T5X_PROMPT_PATH, None)
    prompt = None if prompt_leaf is None else np.asarray(prompt_leaf[...])
    return source.OpenedCheckpoint(
        format=T5X_LEGACY, path=step_dir, shapes=source.shapes_of(leaves),
        read=lambda shardings, dtype: source.place_leaves(leaves, shardings, dtype),
        prompt=prompt, step=_step(optimizer, step_dir))
