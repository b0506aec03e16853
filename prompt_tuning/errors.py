"""The failures a user can cause. Each command reports one as a single `error: ...` line.

Two kinds, told apart by the exit code (see `cli.runner`):
* `UsageError` (exit 2): the command line or the config is wrong in itself: an unknown flag or
  macro, a value out of range, options that exclude each other. Nothing was read or written.
* `UserError` (exit 1): the command was well formed but what it met stopped it: a checkpoint,
  a prompt file, the data, MODEL_DIR (another run's, locked, unwritable), a diverging run.

Both are `ValueError`s, so library callers may catch them as such. Every message is one line that
names the problem and, where there is one, the way out.
"""

from __future__ import annotations


class UserError(ValueError):
    """A failure caused by what the command was given or found (exit code 1)."""

    exit_code = 1


class UsageError(UserError):
    """The command line or config is wrong by itself (exit code 2)."""

    exit_code = 2


class CheckpointError(UserError):
    """A model checkpoint that cannot be read (or written) as asked."""


class CorruptCheckpointError(CheckpointError):
    """A run's own checkpoint in MODEL_DIR that cannot be read back (truncated, edited, ...)."""


class PromptFileError(UserError):
    """A prompt file that is missing, malformed, non-finite, or not what was asked for."""


class RunDirError(UserError):
    """MODEL_DIR cannot be used: another run's, in use by another process, or unwritable."""


class DataError(UserError):
    """A task's data cannot be read: not prepared, or an unknown split."""


class TrainingDivergedError(UserError):
    """The loss or the prompt became NaN or infinite; the last good checkpoint is kept."""
