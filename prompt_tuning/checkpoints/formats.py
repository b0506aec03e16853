"""Which checkpoint format a path holds, and which directory inside it to read.

Accepted paths:
  * a T5X step directory `checkpoint_<step>/`, legacy (a msgpack `checkpoint` file next to zarr
    directories) or orbax (a `state/` orbax PyTree, as t5x writes since 2024);
  * the legacy `checkpoint` file itself, or a T5X orbax `state/` directory itself;
  * a directory holding `checkpoint_<step>/` directories (a T5X model dir): the largest step;
  * our orbax format: a directory with `model_config.json` and `params/`;
  * a Hugging Face directory: `config.json` + `model.safetensors` (or its sharded index);
  * `builtin:NAME`, a checkpoint shipped in `prompt_tuning/assets/` (e.g. `builtin:tiny_t5`).
"""

from __future__ import annotations

import os
import re
from typing import Optional

from prompt_tuning import filesystem, paths
from prompt_tuning.checkpoints import huggingface
from prompt_tuning.errors import CheckpointError

T5X_LEGACY = "t5x_legacy"
T5X_ORBAX = "t5x_orbax"
ORBAX = "orbax"
HUGGINGFACE = "huggingface"
FORMATS = (T5X_LEGACY, T5X_ORBAX, ORBAX, HUGGINGFACE)

MODEL_CONFIG_FILE = "model_config.json"
LEGACY_FILE = "checkpoint"
ORBAX_TREE_METADATA = "_METADATA"
T5X_STATE_ITEM = "state"
_STEP_DIR = re.compile(r"^checkpoint_(\d+)$")


def _is_orbax_tree(path: str) -> bool:
    return filesystem.isfile(filesystem.join(path, ORBAX_TREE_METADATA))


def _is_t5x_orbax_step(path: str) -> bool:
    return _is_orbax_tree(filesystem.join(path, T5X_STATE_ITEM))


def _is_t5x_legacy_step(path: str) -> bool:
    # t5x's own rule (checkpoint_utils.detect_checkpoint_type): an orbax `_METADATA` next to a
    # `checkpoint` file makes it an orbax PyTree, not a legacy checkpoint.
    return filesystem.isfile(filesystem.join(path, LEGACY_FILE)) and not _is_orbax_tree(path)


def latest_step_dir(path: str) -> Optional[str]:
    """The `checkpoint_<step>` subdirectory of `path` with the largest step, if any."""
    steps = []
    for name in filesystem.listdir(path):
        match = _STEP_DIR.match(name)
        if match and filesystem.isdir(filesystem.join(path, name)):
            steps.append((int(match.group(1)), name))
    return filesystem.join(path, max(steps)[1]) if steps else None


def step_from_dir_name(path: str) -> Optional[int]:
    match = _STEP_DIR.match(filesystem.basename(path))
    return int(match.group(1)) if match else None


def _format_of_dir(path: str) -> Optional[str]:
    if filesystem.isfile(filesystem.join(path, MODEL_CONFIG_FILE)):
        return ORBAX
    if huggingface.is_hf_checkpoint(path):
        return HUGGINGFACE
    if _is_t5x_orbax_step(path) or (_is_orbax_tree(path)
                                    and filesystem.basename(path) == T5X_STATE_ITEM):
        return T5X_ORBAX
    if _is_t5x_legacy_step(path):
        return T5X_LEGACY
    return None


def builtin_checkpoints() -> list[str]:
    """Names of the checkpoints shipped with the package (`builtin:<name>`)."""
    return sorted(d for d in filesystem.listdir(paths.ASSETS_DIR)
                  if _format_of_dir(filesystem.join(paths.ASSETS_DIR, d)) is not None)


def _builtin_dir(path: str) -> str:
    name = path[len(paths.BUILTIN_PREFIX):]
    if name not in builtin_checkpoints():
        raise CheckpointError(f"no built-in checkpoint {path!r}; shipped: "
                              + ", ".join(f"builtin:{n}" for n in builtin_checkpoints()) + ".")
    return filesystem.join(paths.ASSETS_DIR, name)


def resolve_checkpoint(path: str) -> tuple[str, str]:
    """(format, directory to read) for any accepted path; CheckpointError otherwise."""
    path = os.fspath(path)
    if path.startswith(paths.BUILTIN_PREFIX):
        path = _builtin_dir(path)
    path = paths.resolve(path)
    if not filesystem.exists(path):
        raise CheckpointError(f"checkpoint path {path} does not exist.")
    if filesystem.isfile(path):
        directory = filesystem.dirname(path)
        if filesystem.basename(path) == LEGACY_FILE and _is_t5x_legacy_step(directory):
            return T5X_LEGACY, directory
        raise CheckpointError(_not_a_checkpoint(path))
    found = _format_of_dir(path)
    if found is None:
        step_dir = latest_step_dir(path)
        if step_dir is not None:
            found, path = _format_of_dir(step_dir), step_dir
    if found is None:
        if filesystem.isfile(filesystem.join(path, "pytorch_model.bin")):
            raise CheckpointError(f"{path} holds only pytorch_model.bin; we never unpickle files. "
                                  "Convert it to safetensors (model.save_pretrained(...)) first.")
        raise CheckpointError(_not_a_checkpoint(path))
    return found, path


def detect_format(path: str) -> str:
    """"t5x_legacy" | "t5x_orbax" | "orbax" | "huggingface" for `path` (see module doc)."""
    return resolve_checkpoint(path)[0]


def _not_a_checkpoint(path: str) -> str:
    return (f"{path} is not a checkpoint: expected a T5X checkpoint dir, an orbax dir with "
            f"{MODEL_CONFIG_FILE}, or a Hugging Face dir with config.json + model.safetensors.")
