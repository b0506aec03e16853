"""The input embedding table of a checkpoint, read alone (`token_embedder/embedding` [V, d]).

`loader.load_checkpoint` reads every weight (an XXL model is 45 GB, its table 0.5 GB); here each
format's one array is read with that format's own reader, after its shape (from metadata: orbax
`_METADATA`, zarr `.zarray`, the safetensors header) has been returned, so a caller checks a
prompt against it before anything large is read. Used to look at prompts (`inspect_prompt`).
"""

from __future__ import annotations

import json
from typing import Callable, Mapping, Sequence

import numpy as np

from prompt_tuning import errors, filesystem

EMBEDDING = "token_embedder/embedding"
# Where Hugging Face T5 keeps the table; older saves have only the per-stack (tied) copy.
HF_EMBEDDING_KEYS = ("shared.weight", "encoder.embed_tokens.weight")
# T5X's parameters item (T5X orbax, T5X legacy msgpack).
T5X_TARGET = "target"

EmbeddingSource = tuple[tuple[int, int], Callable[[], np.ndarray]]



def open_embedding(checkpoint: str) -> EmbeddingSource:
    """(the table's shape [V, d], a function reading it as float32) for any checkpoint path.

    The shape comes from metadata (orbax `_METADATA`, zarr `.zarray`, safetensors header), so
    the prompt is checked against it before the table is read.
    """
    from prompt_tuning.checkpoints import formats  # pylint: disable=import-outside-toplevel

    found, directory = formats.resolve_checkpoint(checkpoint)
    if found == formats.HUGGINGFACE:
        return _hf_embedding(directory)
    if found == formats.T5X_LEGACY:
        return _t5x_legacy_embedding(directory)
    if found == formats.T5X_ORBAX:
        state = filesystem.join(directory, formats.T5X_STATE_ITEM)
        return _orbax_embedding(state if filesystem.isdir(state) else directory, T5X_TARGET)
    from prompt_tuning.checkpoints import orbax_format  # pylint: disable=import-outside-toplevel
    return _orbax_embedding(filesystem.join(directory, orbax_format.PARAMS_ITEM), "")


def _missing(where: str) -> errors.CheckpointError:
    return errors.CheckpointError(f"{where} has no input embedding table ({EMBEDDING}).")


def _table_shape(shape: Sequence[int], where: str) -> tuple[int, int]:
    if len(shape) != 2:
        raise errors.CheckpointError(f"{where}: the input embedding table should be [vocab, "
                                     f"d], got {tuple(shape)}.")
    return int(shape[0]), int(shape[1])


def _orbax_embedding(directory: str, prefix: str) -> EmbeddingSource:
    from prompt_tuning.checkpoints import orbax_io  # pylint: disable=import-outside-toplevel

    tree = orbax_io.tree_metadata(directory)
    if prefix:
        tree = tree.get(prefix) if isinstance(tree, dict) else None
    struct = orbax_io.flat_shapes(tree).get(EMBEDDING) if isinstance(tree, dict) else None
    if struct is None:
        raise _missing(directory)

    def read() -> np.ndarray:  # a partial restore: orbax reads this one array, cast on read
        arrays = orbax_io.restore_arrays(directory, {EMBEDDING: struct}, {},
                                         np.dtype(np.float32), prefix=prefix)
        return np.asarray(arrays[EMBEDDING])

    return _table_shape(struct.shape, directory), read


def _t5x_legacy_embedding(directory: str) -> EmbeddingSource:
    # pylint: disable-next=import-outside-toplevel
    from prompt_tuning.checkpoints import formats, t5x_legacy

    file = filesystem.join(directory, formats.LEGACY_FILE)
    contents = t5x_legacy.read_msgpack(file)  # small: large arrays are zarr specs in it
    optimizer = contents.get("optimizer", contents)
    target = optimizer.get(T5X_TARGET) if isinstance(optimizer, Mapping) else None
    value = t5x_legacy.flatten_target(target).get(EMBEDDING) if isinstance(
        target, Mapping) else None
    if value is None:
        raise _missing(file)
    if t5x_legacy.is_ts_spec(value):
        leaf = t5x_legacy.ZarrArray(EMBEDDING, filesystem.join(directory,
                                                            t5x_legacy.zarr_dir_name(value)))
    else:
        leaf = np.asarray(value)
    return (_table_shape(leaf.shape, directory),
            lambda: np.asarray(leaf[...]).astype(np.float32))


def _hf_embedding(directory: str) -> EmbeddingSource:
    # ml_dtypes gives numpy its bfloat16, the dtype T5 checkpoints are usually saved in.
    import ml_dtypes  # noqa: F401  # pylint: disable=import-outside-toplevel,unused-import
    from safetensors import SafetensorError, safe_open  # pylint: disable=import-outside-toplevel

    from prompt_tuning.checkpoints import huggingface  # pylint: disable=import-outside-toplevel

    index = filesystem.join(directory, huggingface.INDEX_FILE)
    weight_map = {}
    if filesystem.isfile(index):
        try:
            weight_map = json.loads(filesystem.read_text(index))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise errors.CheckpointError(f"Cannot read safetensors index {index}: {e}") from e
    key = next((k for k in HF_EMBEDDING_KEYS if k in weight_map), HF_EMBEDDING_KEYS[0])
    file = filesystem.join(directory, weight_map.get(key, huggingface.SINGLE_FILE))

    def opened():
        try:
            return safe_open(file, framework="np")
        except (SafetensorError, OSError) as e:
            raise errors.CheckpointError(f"Cannot read {file} (truncated or not "
                                         f"safetensors?): {e}") from e

    with opened() as f:
        key = next((k for k in HF_EMBEDDING_KEYS if k in f.keys()), None)
        if key is None:
            raise _missing(file)
        shape = f.get_slice(key).get_shape()

    def read() -> np.ndarray:  # safetensors maps the file: only this tensor's bytes are read
        with opened() as f:
            return f.get_tensor(key).astype(np.float32)

    return _table_shape(shape, file), read
