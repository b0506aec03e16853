"""What a format reader hands the loader: parameter shapes first, arrays only when asked.

Every reader (`t5x_legacy`, `t5x_orbax`, `orbax_format`, Hugging Face) opens a checkpoint into an
`OpenedCheckpoint`: the shapes of its parameters (so the architecture can be inferred or checked
before anything large is read), the config stored with it if any, the prompt if any, and a
`read(shardings, dtype)` function that materialises the parameters as jax arrays.

Readers whose storage allows slicing (TensorStore zarr arrays, in-memory numpy) place arrays with
`place_leaves`: every device's shard is read on its own by `jax.make_array_from_callback`, so a
sharded load never builds a full host copy of a zarr-stored array.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, Mapping, Optional, Protocol

import jax
import numpy as np

from prompt_tuning.errors import CheckpointError
from prompt_tuning.model.config import T5Config

# The encoder prompt of a reference (google-research/prompt-tuning) T5X checkpoint, under `target/`.
T5X_PROMPT_PATH = "encoder/prompt/prompt/prompt"

FlatShardings = Mapping[str, Optional[jax.sharding.Sharding]]
Reader = Callable[[FlatShardings, Optional[np.dtype]], dict[str, jax.Array]]


class SliceableArray(Protocol):
    """An array that can be read a slice at a time (np.ndarray, or a TensorStore wrapper)."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __getitem__(self, index: Any) -> np.ndarray: ...


@dataclasses.dataclass
class OpenedCheckpoint:
    """A checkpoint whose layout is known and whose large arrays are not read yet.

    Attributes:
      format: "t5x_legacy" | "t5x_orbax" | "orbax" | "huggingface".
      path: the resolved checkpoint directory (a step directory for T5X).
      shapes: {'/'-joined parameter path: ShapeDtypeStruct} of the model parameters, prompt
        excluded.
      read: `read(flat_shardings, dtype) -> {path: jax.Array}`; a sharding of None means the
        default device; dtype None keeps the stored dtype.
      config: the architecture stored with the checkpoint (orbax, Hugging Face), else None.
      prompt: `[prompt_length, embed]` if the checkpoint holds a prompt.
      step: the training step recorded by the checkpoint, if any.
    """

    format: str
    path: str
    shapes: dict[str, jax.ShapeDtypeStruct]
    read: Reader
    config: Optional[T5Config] = None
    prompt: Optional[np.ndarray] = None
    step: Optional[int] = None


def shapes_of(leaves: Mapping[str, SliceableArray]) -> dict[str, jax.ShapeDtypeStruct]:
    return {k: jax.ShapeDtypeStruct(tuple(v.shape), np.dtype(v.dtype)) for k, v in leaves.items()}


def _cast(value: np.ndarray, dtype: Optional[np.dtype]) -> np.ndarray:
    value = np.asarray(value)
    return value if dtype is None or value.dtype == dtype else value.astype(dtype)


def _index_key(index: tuple) -> tuple:
    # Slices are not hashable before Python 3.12; replicated devices ask for the same slice.
    return tuple((s.start, s.stop, s.step) if isinstance(s, slice) else s for s in index)


def place_leaf(name: str, leaf: SliceableArray, sharding: Optional[jax.sharding.Sharding],
               dtype: Optional[np.dtype]) -> jax.Array:
    """One parameter as a jax array on `sharding`; each distinct shard is read once.

    A shard read for several devices (replication) is kept only until its last device took it,
    so the host holds at most the shards still to be placed, never a second full copy.
    """
    try:
        if sharding is None:
            return jax.device_put(_cast(leaf[...], dtype))
        shape = tuple(leaf.shape)
        pending = collections.Counter(
            _index_key(index) for index in sharding.addressable_devices_indices_map(shape).values())
        cache: dict[tuple, np.ndarray] = {}

        def read_shard(index: tuple) -> np.ndarray:
            key = _index_key(index)
            value = cache.pop(key) if key in cache else _cast(leaf[index], dtype)
            pending[key] -= 1
            if pending[key] > 0:
                cache[key] = value
            return value

        return jax.make_array_from_callback(shape, sharding, read_shard)
    except CheckpointError:
        raise
    except (ValueError, TypeError, IndexError) as e:  # e.g. a spec with more axes than the array
        raise CheckpointError(f"cannot place {name} {tuple(leaf.shape)} on {sharding}: "
                              f"{describe_error(e)}") from e


def place_leaves(leaves: Mapping[str, SliceableArray], shardings: FlatShardings,
                 dtype: Optional[np.dtype]) -> dict[str, jax.Array]:
    return {name: place_leaf(name, leaf, shardings.get(name), dtype)
            for name, leaf in leaves.items()}


def describe_error(error: BaseException) -> str:
    """The first line of a third-party error, for one-line CheckpointError messages."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
