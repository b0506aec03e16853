"""Text files a user gives (JSONL inputs, gin files) read as UTF-8, line by line, so that a byte
that is not UTF-8 is reported with its file and line instead of Python's bare codec message."""

from __future__ import annotations

from typing import Iterator, Type

from prompt_tuning import errors, filesystem


def utf8_lines(path: str, error: Type[errors.UserError] = errors.UserError
               ) -> Iterator[tuple[int, str]]:
    """(line number from 1, line with its newline) of the file at `path`.

    Raises `error` naming `path:line` and the column of the first byte that is not UTF-8.
    """
    with filesystem.open_file(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise error(f"{path}:{number}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at "
                            f"column {e.start + 1}); save the file as UTF-8.") from e


def read_utf8(path: str, error: Type[errors.UserError] = errors.UserError) -> str:
    """The whole file at `path` as UTF-8 text (see `utf8_lines`)."""
    return "".join(line for _, line in utf8_lines(path, error))
