"""Writing a directory so that it appears complete or not at all.

Write into `temporary_dir_for(path)` (`<path>.tmp-<random>`, same parent, so the final rename
stays on one filesystem), then `replace_dir_atomically(tmp, path)`; on failure remove `tmp`.
"""

from __future__ import annotations

import os
import secrets
import shutil

from prompt_tuning.checkpoints.huggingface import CheckpointError


def check_destination(path: str, overwrite: bool) -> None:
    """Refuses a file, or a non-empty directory unless `overwrite`."""
    if os.path.isfile(path):
        raise CheckpointError(f"{path} exists and is a file; choose a directory path.")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise CheckpointError(f"{path} exists and is not empty; pass overwrite=True "
                              "(--overwrite) to replace it.")


def temporary_dir_for(path: str) -> str:
    """An empty `<path>.tmp-<random>` next to `path` (missing parents are created)."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{secrets.token_hex(4)}"
    os.makedirs(tmp)
    return tmp


def replace_dir_atomically(tmp: str, path: str) -> None:
    """Renames the finished `tmp` to `path`; an existing `path` is removed only afterwards."""
    if os.path.isdir(path) and os.listdir(path):
        old = f"{path}.old-{secrets.token_hex(4)}"
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old)
    else:
        if os.path.isdir(path):
            os.rmdir(path)
        os.rename(tmp, path)
