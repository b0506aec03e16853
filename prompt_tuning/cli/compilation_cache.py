"""JAX's persistent compilation cache, on by default for every command.

A second launch of the same program (same model, shapes, mesh, flags and jax version) then reads
XLA's compiled executables from disk instead of compiling them again: the train step, the
evaluation programs, scoring and generation. Where: `$PT_COMPILATION_CACHE_DIR` if set (empty or
`off` turns the cache off), else JAX's own `JAX_COMPILATION_CACHE_DIR` if the user set it, else
`$XDG_CACHE_HOME/prompt_tuning/xla` (`~/.cache/prompt_tuning/xla`). Every program is cached,
however quickly it compiled (JAX's default skips those under a second, which is all of the tiny
model's), and our directory is kept under `MAX_BYTES` (least recently used entries go first;
`JAX_COMPILATION_CACHE_MAX_SIZE` overrides). A directory the user gave JAX itself
(`JAX_COMPILATION_CACHE_DIR`) keeps the user's JAX settings, unbounded by default: other JAX
programs share it, and JAX's eviction fails on every entry they wrote without a bound (it reads
each entry's access time, which only bounded caches record), so bounding it would leave every
new program uncached, with a warning at each. A directory that cannot be created leaves the
cache off: it only ever saves time.
"""

from __future__ import annotations

import os
import sys
from typing import Mapping, Optional

ENV = "PT_COMPILATION_CACHE_DIR"
MAX_BYTES = 2 * 2**30


def cache_dir(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """The directory this process should cache in, or None for no cache."""
    if ENV in environ:
        chosen = environ[ENV].strip()
        return None if chosen.lower() in ("", "off", "0", "none") else os.path.abspath(chosen)
    if environ.get("JAX_COMPILATION_CACHE_DIR"):
        return environ["JAX_COMPILATION_CACHE_DIR"]
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "prompt_tuning", "xla")


def _ours(environ: Mapping[str, str]) -> bool:
    """Whether the cache directory is this package's (bounded), not the user's JAX one."""
    return ENV in environ or not environ.get("JAX_COMPILATION_CACHE_DIR")


def enable(environ: Optional[dict] = None) -> Optional[str]:
    """Turns the cache on for this process (before or after jax is imported); returns where."""
    environ = os.environ if environ is None else environ
    path = cache_dir(environ)
    if path is None:
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    settings = {"jax_compilation_cache_dir": path,
                "jax_persistent_cache_min_compile_time_secs": 0.0,
                "jax_persistent_cache_min_entry_size_bytes": 0}
    if _ours(environ):
        settings["jax_compilation_cache_max_size"] = MAX_BYTES
    if "jax" in sys.modules:  # already configured from the environment: update it
        import jax  # pylint: disable=import-outside-toplevel
        for name, value in settings.items():
            if name == "jax_compilation_cache_dir" or name.upper() not in environ:
                jax.config.update(name, value)
    else:  # read by jax when it is first imported; nothing heavy is imported here
        environ["JAX_COMPILATION_CACHE_DIR"] = path
        for name, value in settings.items():
            environ.setdefault(name.upper(), str(value))  # the user's own thresholds win
    return path
