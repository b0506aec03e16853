"""`load_checkpoint`: any supported checkpoint into our parameter tree, checked and placed.

    loaded = load_checkpoint("t5_1_1_lm100k_base/checkpoint_1100000",  # a local copy of gs://
                             config=t5_1_1("base"), shardings=param_shardings)
    loaded.params    # {"token_embedder": {"embedding": [vocab, embed]}, "encoder": ...}
    loaded.prompt    # [prompt_length, embed] for a prompt-tuning checkpoint, else None

The format is detected (`formats.detect_format`); shapes are read first, so a checkpoint of the
wrong size fails with a one-line CheckpointError naming the first differences before any large
T5X or orbax array is read (Hugging Face safetensors are read whole, then placed). Prompts never enter `params`: a reference prompt-tuning checkpoint's
`target/encoder/prompt/prompt/prompt`, or the prompt saved with our format, is `loaded.prompt`
(put it back as `params["prompt"]["prompt"]` for `Transformer(config, prompt=Prompt(P))`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Union

import jax
import numpy as np
from flax import traverse_util

from prompt_tuning.checkpoints import (architecture, formats, huggingface, orbax_format, source,
                                       t5x_legacy, t5x_orbax)
from prompt_tuning.errors import CheckpointError
from prompt_tuning.model.config import T5Config

PyTree = Any
DTypeLike = Union[str, np.dtype, type, None]


@dataclasses.dataclass
class LoadedCheckpoint:
    """A checkpoint read into our parameter tree.

    Attributes:
      format: "t5x_legacy" | "t5x_orbax" | "orbax" | "huggingface".
      config: the architecture (given, stored with the checkpoint, or inferred from shapes).
      params: nested dict of jax arrays with T5X names, on the requested shardings.
      prompt: `[prompt_length, embed]` numpy array if the checkpoint holds a prompt, else None.
      step: the training step the checkpoint records (T5X), else None.
      path: the directory actually read (e.g. the latest `checkpoint_<step>` of a model dir).
    """

    format: str
    config: T5Config
    params: PyTree
    prompt: Optional[np.ndarray] = None
    step: Optional[int] = None
    path: Optional[str] = None


def _open_huggingface(path: str) -> source.OpenedCheckpoint:
    config, flat = huggingface.load_hf_checkpoint(path)
    return source.OpenedCheckpoint(
        format=formats.HUGGINGFACE, path=path, shapes=source.shapes_of(flat),
        read=lambda shardings, dtype: source.place_leaves(flat, shardings, dtype), config=config)


def open_checkpoint(path: str) -> source.OpenedCheckpoint:
    """Detects the format of `path` and opens it (shapes known, large arrays not read yet)."""
    found, directory = formats.resolve_checkpoint(path)
    openers = {formats.T5X_LEGACY: t5x_legacy.open_t5x_legacy,
               formats.T5X_ORBAX: t5x_orbax.open_t5x_orbax,
               formats.ORBAX: orbax_format.open_orbax,
               formats.HUGGINGFACE: _open_huggingface}
    return openers[found](directory)


def _flat_shardings(shardings: Any, shapes: dict) -> source.FlatShardings:
    """{path: Sharding} for every parameter, each checked to fit its parameter's shape."""
    if shardings is None:
        return {}
    if isinstance(shardings, jax.sharding.Sharding):  # one sharding for every parameter
        flat = {name: shardings for name in shapes}
    else:
        flat = traverse_util.flatten_dict(dict(shardings), sep="/")
    missing = [name for name in shapes if name not in flat]
    if missing:
        raise ValueError(f"shardings has no entry for {missing[0]} ({len(missing)} parameters "
                         "missing); pass a tree matching the parameters, or one Sharding.")
    for name, struct in shapes.items():
        try:  # ShapeDtypeStruct checks the rank, shard_shape the divisibility
            jax.ShapeDtypeStruct(struct.shape, struct.dtype, sharding=flat[name])
            flat[name].shard_shape(struct.shape)
        except (ValueError, TypeError, IndexError, AttributeError) as e:
            raise ValueError(f"shardings[{name!r}] = {flat[name]} does not fit its shape "
                             f"{struct.shape}: {source.describe_error(e)}") from e
    return flat


def _check_hidden_fields(opened: source.OpenedCheckpoint, config: T5Config) -> None:
    # Shapes cannot show the relative-position range; a stored one must agree with the given one.
    stored = opened.config
    if stored is not None and stored.relpos_max_distance != config.relpos_max_distance:
        raise CheckpointError(
            f"checkpoint was trained with relpos_max_distance={stored.relpos_max_distance} but "
            f"the chosen model has {config.relpos_max_distance}.")


def load_checkpoint(path: str, config: Optional[T5Config] = None, shardings: Any = None,
                    dtype: DTypeLike = None) -> LoadedCheckpoint:
    """Reads a T5X (legacy or orbax), our orbax, or a Hugging Face T5 checkpoint.

    Args:
      path: a checkpoint directory, a T5X model dir (its largest `checkpoint_<step>` is read) or
        a legacy T5X `checkpoint` file; see `formats`.
      config: the expected architecture. Every parameter path and shape is checked against it
        (one-line CheckpointError otherwise). None: the stored config (orbax, Hugging Face) or
        one inferred from the shapes (T5X).
      shardings: None (default device), one `jax.sharding.Sharding` for all parameters, or a
        tree matching the parameters (e.g. NamedShardings). Arrays are read shard by shard onto
        it (orbax restore targets; TensorStore slices for T5X legacy zarr arrays).
      dtype: cast every parameter to this dtype (e.g. "bfloat16"); None keeps the stored dtype.
    """
    opened = open_checkpoint(path)
    if config is None:
        config = opened.config or architecture.infer_config(opened.shapes)
    else:
        _check_hidden_fields(opened, config)
    architecture.check_matches(opened.shapes, config)
    if opened.prompt is not None:
        architecture.check_prompt(opened.prompt.shape, config)
    flat = opened.read(_flat_shardings(shardings, opened.shapes),
                       None if dtype is None else np.dtype(dtype))
    return LoadedCheckpoint(format=opened.format, config=config,
                            params=traverse_util.unflatten_dict(flat, sep="/"),
                            prompt=opened.prompt, step=opened.step, path=opened.path)
