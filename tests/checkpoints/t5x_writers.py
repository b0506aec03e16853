"""Test-only writers of the two layouts t5x produces, built from t5x's code (not from our reader).

* `write_t5x_legacy`: t5x/checkpoints.py `Checkpointer.save` — `checkpoint_<step>/checkpoint`
  (flax msgpack of {"version": 3, "optimizer": {"target", "state"}}) with arrays of at least
  `zarr_min_size` elements in zarr directories named by their dotted path (gzip chunks), the
  others inline. The spec recorded in the msgpack mimics the three variants seen in the wild:
  "gcs" (t5x writing to gs://, as the public t5_1_1_lm100k checkpoints: dummy bucket
  `t5x-dummy-bucket`, normalised by `ts.Spec(...).to_json()`), "file" (t5x writing locally) and
  "gfile" (google-research/prompt-tuning's test_t5_1_1_tiny/checkpoint_3: no top-level dtype,
  path without the trailing slash).
* `write_t5x_orbax`: t5x/checkpoints.py `OrbaxCheckpointManagerInterface` — an orbax
  `CheckpointManager(step_prefix="checkpoint")` with a `state` item saved by
  `PyTreeCheckpointHandler(use_ocdbt=True)` from `train_state.state_dict()`.

These live in tests/ rather than the package: nobody needs to *write* T5X checkpoints (current
t5x reads orbax, and we export to our orbax format and Hugging Face); they exist to feed the
reader exactly what t5x writes.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

import jax.numpy as jnp
import numpy as np
import tensorstore as ts
from flax import serialization, traverse_util

DUMMY_BUCKET = "t5x-dummy-bucket"
PROMPT_PATH = "encoder/prompt/prompt/prompt"


def _zarr_dtype(dtype: np.dtype) -> str:
    return "bfloat16" if dtype == jnp.bfloat16 else np.dtype(dtype).str


def _chunks(shape: tuple[int, ...]) -> list[int]:
    # Split the first axis in two so that arrays span several chunk files, as large ones do.
    return [shape[0] // 2 if i == 0 and shape[0] % 2 == 0 and shape[0] > 1 else d
            for i, d in enumerate(shape)]


def _recorded_spec(dotted: str, value: np.ndarray, metadata: dict, kvstore: str) -> dict:
    if kvstore == "gcs":
        return ts.Spec({"driver": "zarr", "dtype": jnp.dtype(value.dtype).name,
                        "kvstore": {"driver": "gcs", "bucket": DUMMY_BUCKET, "path": dotted},
                        "metadata": metadata}).to_json()
    if kvstore == "file":
        return {"driver": "zarr", "dtype": jnp.dtype(value.dtype).name,
                "kvstore": {"driver": "file", "path": dotted + "/"}, "metadata": metadata}
    if kvstore == "gfile":
        return {"driver": "zarr", "kvstore": {"driver": "gfile", "path": dotted},
                "metadata": {**metadata, "compressor": {"id": "gzip", "level": 1},
                             "dtype": _zarr_dtype(value.dtype)}}
    raise ValueError(f"kvstore must be gcs, file or gfile, got {kvstore!r}")


def _write_zarr(step_dir: str, name: str, value: np.ndarray, kvstore: str) -> dict:
    dotted = name.replace("/", ".")
    metadata = {"compressor": {"id": "gzip"}, "shape": list(value.shape),
                "chunks": _chunks(value.shape)}
    store = ts.open({"driver": "zarr", "kvstore": {"driver": "file",
                                                   "path": os.path.join(step_dir, dotted)},
                     "metadata": {**metadata, "dtype": _zarr_dtype(value.dtype)}},
                    create=True).result()
    store.write(value).result()
    return _recorded_spec(dotted, value, metadata, kvstore)


def _adafactor_states(flat: Mapping[str, np.ndarray]) -> dict:
    """Factored second moments for matrices, like t5x's Adafactor (m unused: None)."""
    states = {}
    for path, value in flat.items():
        if value.ndim == 2:
            state = {"v_row": np.full(value.shape[0], 0.5, np.float32),
                     "v_col": np.full(value.shape[1], 0.25, np.float32),
                     "v": np.zeros((1,), np.float32), "m": None}
        else:
            state = {"v_row": np.zeros((1,), np.float32), "v_col": np.zeros((1,), np.float32),
                     "v": np.full(value.shape, 0.125, np.float32), "m": None}
        states[path] = state
    return traverse_util.unflatten_dict(states, sep="/")


def write_t5x_legacy(model_dir: str, params: Mapping[str, np.ndarray], step: int,
                     zarr_min_size: int = 256, kvstore: str = "gcs",
                     prompt: Optional[np.ndarray] = None) -> str:
    """Writes `model_dir/checkpoint_<step>/` from flat '/'-joined params; returns its path."""
    step_dir = os.path.join(model_dir, f"checkpoint_{step}")
    os.makedirs(step_dir)
    flat = dict(params)
    if prompt is not None:
        flat[PROMPT_PATH] = prompt
    target = {}
    for path, value in flat.items():
        value = np.asarray(value)
        if value.size >= zarr_min_size:
            target[path] = _write_zarr(step_dir, f"target/{path}", value, kvstore)
        else:
            target[path] = value
    # One large optimizer-state array goes to zarr as well, as t5x does; the reader skips it.
    states = _adafactor_states(flat)
    embedding_v_row = states["token_embedder"]["embedding"]["v_row"]
    states["token_embedder"]["embedding"]["v_row"] = _write_zarr(
        step_dir, "state/param_states/token_embedder/embedding/v_row", embedding_v_row, kvstore)
    contents = {"version": 3,
                "optimizer": {"target": traverse_util.unflatten_dict(target, sep="/"),
                              "state": {"step": np.array(step, np.int32),
                                        "param_states": states}}}
    with open(os.path.join(step_dir, "checkpoint"), "wb") as f:
        f.write(serialization.msgpack_serialize(contents))
    return step_dir


def write_t5x_orbax(model_dir: str, params: Mapping[str, np.ndarray], step: int,
                    prompt: Optional[np.ndarray] = None) -> str:
    """Writes `model_dir/checkpoint_<step>/` as t5x's orbax manager does; returns its path."""
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel

    flat = {k: jnp.asarray(v) for k, v in params.items()}
    if prompt is not None:
        flat[PROMPT_PATH] = jnp.asarray(prompt)
    state_dict = {"target": traverse_util.unflatten_dict(flat, sep="/"),
                  "state": {"step": jnp.asarray(step, jnp.int32),
                            "param_states": _adafactor_states(params)}}
    options = ocp.CheckpointManagerOptions(step_prefix="checkpoint", create=True,
                                           enable_async_checkpointing=False)
    manager = ocp.CheckpointManager(
        model_dir, options=options,
        item_handlers={"state": ocp.PyTreeCheckpointHandler(use_ocdbt=True)})
    manager.save(step, args=ocp.args.Composite(state=ocp.args.PyTreeSave(state_dict)))
    manager.wait_until_finished()
    manager.close()
    return os.path.join(model_dir, f"checkpoint_{step}")
