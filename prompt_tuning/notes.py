"""The `note:` lines a command prints on stderr: what it decided for the user, once per run."""

from __future__ import annotations

import sys


def note(message: str) -> None:
    """One `note: ...` line on stderr, from the first process only (every host runs the same)."""
    import jax  # pylint: disable=import-outside-toplevel

    if jax.process_index() == 0:
        print(f"note: {message}", file=sys.stderr, flush=True)
