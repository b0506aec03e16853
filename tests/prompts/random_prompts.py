"""Prompt files for the tests that serve several prompts: U[-0.5, 0.5] `[P, 64]` (the tiny
T5's width), one `.npy` per name."""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np


def write(directory: str, lengths: Mapping[str, int], width: int = 64, seed: int = 0
          ) -> dict[str, str]:
    """{name: path of `directory/name.npy`}, each `[lengths[name], width]` float32."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, length in lengths.items():
        out[name] = os.path.join(directory, f"{name}.npy")
        np.save(out[name], rng.uniform(-0.5, 0.5, (length, width)).astype(np.float32))
    return out
