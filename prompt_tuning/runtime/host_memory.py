"""Giving the host memory that compiling left behind back to the operating system.

XLA's compiler allocates a few hundred MiB while it builds a program (the T5 1.1-small train
step: about 400 MiB) and frees it when it is done, but glibc's allocator keeps freed heap pages
mapped, so the process's resident memory stays that much higher for the whole run: on the CPU
backend, on top of the step's own buffers. `release()` asks glibc to return them (`malloc_trim`);
elsewhere it does nothing. Call it after a large compilation, not in a hot loop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Optional


@functools.lru_cache(maxsize=1)
def _libc() -> Optional[ctypes.CDLL]:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (musl, macOS): nothing to release this way
        return None


def release() -> bool:
    """Returns freed heap memory to the OS; True if the allocator could be asked."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
