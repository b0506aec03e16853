"""`--dry_run`'s promise: a config built for its shapes only looks at no path the user gave.

A dry run checks whether a job fits its devices, e.g. the reference's XXL launch script (whose
paths are all `gs://`) on a laptop with no network. While `building()` is active, configs skip
the checks that would look at MODEL_DIR, the data directory, an output directory or a prompt
file (their existence, their kind); the values are still validated as values.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

_depth = 0


@contextlib.contextmanager
def building(active: bool = True) -> Iterator[None]:
    """Within: `active()` is True (when `active` is); nests, and ends with the block."""
    global _depth  # pylint: disable=global-statement
    _depth += int(active)
    try:
        yield
    finally:
        _depth -= int(active)


def active() -> bool:
    """True while a config is built for a dry run: look at no user path."""
    return _depth > 0
