"""Checkpoints in and out: T5X (legacy msgpack + zarr, and orbax), our orbax format, Hugging Face.

    detect_format(path) -> "t5x_legacy" | "t5x_orbax" | "orbax" | "huggingface"
    load_checkpoint(path, config=None, shardings=None, dtype=None) -> LoadedCheckpoint
    save_checkpoint(params, config, path, prompt=None, overwrite=False)   # our orbax format

Every problem with a checkpoint raises `CheckpointError` (a ValueError) with a one-line message.
`python -m prompt_tuning.convert_checkpoint` converts any of them to ours or to Hugging Face.
"""

from prompt_tuning.checkpoints.formats import FORMATS, detect_format
from prompt_tuning.errors import CheckpointError
from prompt_tuning.checkpoints.loader import LoadedCheckpoint, load_checkpoint, open_checkpoint
from prompt_tuning.checkpoints.orbax_format import save_checkpoint
from prompt_tuning.errors import CheckpointError

__all__ = ["FORMATS", "CheckpointError", "LoadedCheckpoint", "detect_format", "load_checkpoint",
           "open_checkpoint", "save_checkpoint"]
