"""The checksum of an array as we record it: sha256 over its dtype, shape and C-order bytes.

Recorded when a run or an export writes an array (checkpoint JSON, an export's metadata, a PEFT
adapter's safetensors header) and compared on every read, so flipped bytes in array data are an
error instead of a prompt of 1e26. Equal values of equal dtype and shape give equal digests
whatever wrote them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

Digest = dict[str, Any]


def sha256(array: np.ndarray) -> str:
    """Hex sha256 of `array`'s dtype, shape and bytes (C order)."""
    array = np.asarray(array)  # not ascontiguousarray, which makes a scalar [1]
    hasher = hashlib.sha256(f"{array.dtype.str}{list(array.shape)}".encode())
    hasher.update(array.tobytes(order="C"))
    return hasher.hexdigest()


def digest(array: np.ndarray) -> Digest:
    """{"sha256", "dtype", "shape"} of a host array."""
    array = np.asarray(array)
    return {"sha256": sha256(array), "dtype": str(array.dtype), "shape": list(array.shape)}
