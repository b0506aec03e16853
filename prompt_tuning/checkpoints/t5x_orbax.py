"""T5X checkpoints written with orbax (t5x's default since 2024-02-27).

Layout (t5x/checkpoints.py `OrbaxCheckpointManagerInterface`: an orbax `CheckpointManager` with
`step_prefix="checkpoint"` and items `state` (a `PyTreeCheckpointHandler(use_ocdbt=True)`) and
`dataset`):

  MODEL_DIR/checkpoint_<step>/_CHECKPOINT_METADATA
  MODEL_DIR/checkpoint_<step>/state/_METADATA, manifest.ocdbt, ocdbt.process_0/, ...
      the PyTree `train_state.state_dict()`: {"target": params, "state": {"step": int,
      "param_states": {...}}} (+ "flax_mutables" for models that have them)
  MODEL_DIR/checkpoint_<step>/dataset/     (input pipeline state; ignored)

Only `state/target` is read (orbax partial restore), straight onto the requested shardings. A
reference prompt-tuning model's `target/encoder/prompt/prompt/prompt` is returned as the prompt.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from prompt_tuning.checkpoints import orbax_io, source
from prompt_tuning.checkpoints.formats import T5X_ORBAX, T5X_STATE_ITEM, step_from_dir_name
from prompt_tuning import filesystem
from prompt_tuning.errors import CheckpointError

_TARGET = "target"


def _state_dir(path: str) -> str:
    candidate = filesystem.join(path, T5X_STATE_ITEM)
    return candidate if filesystem.isdir(candidate) else path


def _step(state_dir: str, tree: dict, step_dir: str) -> Optional[int]:
    step = step_from_dir_name(step_dir)
    if step is not None:
        return step
    state = tree.get("state")
    if isinstance(state, dict) and hasattr(state.get("step"), "shape"):
        return int(orbax_io.restore_numpy(state_dir, "state/step").reshape(()))
    return None


def open_t5x_orbax(path: str) -> source.OpenedCheckpoint:
    """Opens a T5X orbax step directory (or its `state/` item); arrays are read by `read`."""
    state_dir = _state_dir(path)
    tree = orbax_io.tree_metadata(state_dir)
    if not isinstance(tree, dict) or not isinstance(tree.get(_TARGET), dict):
        keys = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
        raise CheckpointError(f"T5X orbax checkpoint {state_dir} has no '{_TARGET}' parameters "
                              f"(top-level keys {keys}).")
    shapes = orbax_io.flat_shapes(tree[_TARGET])
    prompt = None
    if shapes.pop(source.T5X_PROMPT_PATH, None) is not None:
        prompt = orbax_io.restore_numpy(state_dir, f"{_TARGET}/{source.T5X_PROMPT_PATH}")
    step_dir = path if state_dir != path else filesystem.dirname(path.rstrip("/"))

    def read(shardings, dtype):
        return orbax_io.restore_arrays(state_dir, shapes, shardings, dtype, prefix=_TARGET)

    return source.OpenedCheckpoint(format=T5X_ORBAX, path=path, shapes=shapes, read=read,
                                   prompt=None if prompt is None else np.asarray(prompt),
                                   step=_step(state_dir, tree, step_dir))
