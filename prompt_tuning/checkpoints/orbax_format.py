"""Our checkpoint format: what `convert_checkpoint` writes and training reads.

Layout:
  DIR/model_config.json   every `T5Config` field (json object)
  DIR/params/             orbax `StandardSave` of the nested parameter dict (T5X names)
  DIR/prompt/             optional: orbax `StandardSave` of {"prompt": [prompt_length, embed]}

The directory is written as `DIR.tmp-<random>` next to DIR and renamed when complete, so a
failure never leaves a half-written DIR. Saving is single-process (a conversion step); loading
works on any number of devices and reads each shard directly.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping, Optional

import numpy as np
from flax import traverse_util

from prompt_tuning import atomic_write, filesystem
from prompt_tuning.checkpoints import architecture, orbax_io, source
from prompt_tuning.checkpoints.formats import MODEL_CONFIG_FILE, ORBAX
from prompt_tuning.errors import CheckpointError
from prompt_tuning.model.config import T5Config
from prompt_tuning.prompts import seam

PyTree = Any
PARAMS_ITEM = "params"
PROMPT_ITEM = "prompt"


def read_model_config(path: str) -> T5Config:
    """The `T5Config` of `path/model_config.json` (missing fields take their defaults)."""
    file = filesystem.join(path, MODEL_CONFIG_FILE)
    try:
        fields = json.loads(filesystem.read_text(file))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {file}: {source.describe_error(e)}") from e
    if not isinstance(fields, dict):
        raise CheckpointError(f"{file} holds a {type(fields).__name__}, not a T5Config object.")
    known = {f.name for f in dataclasses.fields(T5Config)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise CheckpointError(f"{file} is not a T5Config: unknown fields {unknown}; expected "
                              f"some of {sorted(known)}.")
    try:
        return T5Config(**fields)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{file}: {e}") from e


def open_orbax(path: str) -> source.OpenedCheckpoint:
    """Opens our format (see module doc); arrays are read by `read`."""
    config = read_model_config(path)
    params_dir = filesystem.join(path, PARAMS_ITEM)
    if not filesystem.isdir(params_dir):
        raise CheckpointError(f"{path} has {MODEL_CONFIG_FILE} but no {PARAMS_ITEM}/ directory.")
    shapes = orbax_io.flat_shapes(orbax_io.tree_metadata(params_dir))
    prompt = None
    if shapes.pop(seam.PATH, None) is not None:
        prompt = orbax_io.restore_numpy(params_dir, seam.PATH)
    prompt_dir = filesystem.join(path, PROMPT_ITEM)
    if filesystem.isdir(prompt_dir):
        prompt = orbax_io.restore_numpy(prompt_dir, PROMPT_ITEM)

    def read(shardings, dtype):
        return orbax_io.restore_arrays(params_dir, shapes, shardings, dtype)

    return source.OpenedCheckpoint(format=ORBAX, path=path, shapes=shapes, read=read,
                                   config=config, prompt=prompt)


def _split_prompt(params: PyTree, prompt: Optional[Any]) -> tuple[dict, Optional[Any]]:
    flat = traverse_util.flatten_dict(dict(params), sep="/")
    in_tree = flat.pop(seam.PATH, None)
    if prompt is not None and in_tree is not None:
        raise ValueError("save_checkpoint got a prompt both in params['prompt'] and as prompt=.")
    return flat, prompt if prompt is not None else in_tree


def _write(directory: str, flat: Mapping[str, Any], config: T5Config,
           prompt: Optional[Any]) -> None:
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel

    filesystem.write_bytes(filesystem.join(directory, MODEL_CONFIG_FILE), json.dumps(
        dataclasses.asdict(config), indent=2, sort_keys=True).encode())
    tree = traverse_util.unflatten_dict(dict(flat), sep="/")
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as checkpointer:
        checkpointer.save(filesystem.join(directory, PARAMS_ITEM), args=ocp.args.StandardSave(tree))
        if prompt is not None:
            checkpointer.save(filesystem.join(directory, PROMPT_ITEM),
                              args=ocp.args.StandardSave({PROMPT_ITEM: prompt}))


def save_checkpoint(params: PyTree, config: T5Config, path: str, prompt: Optional[Any] = None,
                    overwrite: bool = False) -> None:
    """Writes `params` (+ `prompt [P, embed]`) in our orbax format to the directory `path`.

    A prompt may also come inside `params`, at `seam.PATH`. The parameters are
    checked against `config` first. An existing non-empty `path` is refused unless `overwrite`.
    """
    path = os.fspath(path)
    path = path if filesystem.is_remote(path) else os.path.abspath(path)
    atomic_write.check_destination(path, overwrite, "checkpoint directory", CheckpointError)
    flat, prompt = _split_prompt(params, prompt)
    architecture.check_matches(source.shapes_of(flat), config)
    if prompt is not None:
        architecture.check_prompt(tuple(np.shape(prompt)), config)
    with atomic_write.atomic_directory(path) as tmp:
        _write(tmp, flat, config, prompt)
