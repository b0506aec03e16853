"""Writing files and directories so that they appear complete or not at all.

Everything that leaves the package through the file system goes through here: run.json,
config.gin, eval results, infer/score outputs, exported prompts, converted checkpoints.

* A file is written to a temporary sibling (same filesystem), flushed to disk, made 0644 and
  renamed over the destination. `write_files_atomically` commits several files that belong
  together (a prompt `.npy` and its metadata JSON) only once all of them are written.
* A directory is built in `<path>.tmp-<random>` (`atomic_directory`) and renamed into place when
  complete; an existing destination is removed only after the new one is in place.
On any failure the temporaries are removed and the destination is untouched.

In an object store (`gs://`) one object's upload is itself atomic, so a file is uploaded straight
to its name; files that belong together are uploaded in the order given (the metadata last). A
directory is built under `<path>.tmp-<random>` too and then moved into place object by object
(server-side copies), so a reader of `path` may see it partly moved; `filesystem` says why.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import tempfile
from typing import Iterator, Mapping, Optional, Union

from prompt_tuning import errors, filesystem

Data = Union[str, bytes]
# Files we publish are readable by everyone, as files created under a usual umask are;
# mkstemp's 0600 would hide a prompt or a checkpoint from the other users of a shared machine.
PUBLIC_FILE_MODE = 0o644


def _temporary_file(path: str, data: Data, tmp: Optional[str] = None) -> str:
    """Writes `data` next to `path` under a temporary name (or `tmp`); returns that name."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if tmp is None:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.tmp-")
    else:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PUBLIC_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_as_bytes(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, PUBLIC_FILE_MODE)
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _as_bytes(data: Data) -> bytes:
    return data.encode() if isinstance(data, str) else data


def write_files_atomically(contents: Mapping[str, Data]) -> None:
    """Writes every `{path: text or bytes}`; the renames happen only once all are written."""
    if any(filesystem.is_remote(path) for path in contents):
        for path, data in contents.items():  # each upload is atomic; in the order given
            filesystem.write_bytes(path, _as_bytes(data))
        return
    temporaries: list[tuple[str, str]] = []
    try:
        for path, data in contents.items():
            temporaries.append((_temporary_file(path, data), path))
        for tmp, path in temporaries:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temporaries:
            _remove(tmp)


def write_text_atomically(path: str, text: Data, tmp: Optional[str] = None) -> str:
    """Writes `text` (or bytes) to `path` atomically (mode 0644); returns `path`.

    Args:
      path: the destination; its directory is created if missing.
      text: the whole content.
      tmp: a fixed temporary name, for callers that must recognise a leftover of a killed write
        (MODEL_DIR's `run.json.tmp`); default: a unique `.<name>.tmp-*` sibling.
    """
    if tmp is None or filesystem.is_remote(path):
        write_files_atomically({path: text})
        return path
    written = _temporary_file(path, text, tmp)
    try:
        os.replace(written, path)
    finally:
        _remove(written)
    return path


def leftovers(path: str, old: bool = True) -> list[str]:
    """What writes to `path` that were killed midway left next to it: temporary files
    (`.<name>.tmp-*`), temporary directories (`<name>.tmp-*`) and, with `old`, a replaced
    directory not yet removed (`<name>.old-*`)."""
    if not filesystem.is_remote(path):
        path = os.path.abspath(path)
    directory, name = filesystem.dirname(path.rstrip("/")), filesystem.basename(path)
    if not filesystem.isdir(directory):
        return []
    prefixes = (f".{name}.tmp-", f"{name}.tmp-") + ((f"{name}.old-",) if old else ())
    return sorted(filesystem.join(directory, entry) for entry in filesystem.listdir(directory)
                  if entry.startswith(prefixes))


def remove_leftovers(path: str, old: bool = True) -> None:
    """Removes `leftovers(path, old)`. For a writer of `path` that owns it: a concurrent write
    to the same path would lose its temporary."""
    for leftover in leftovers(path, old):
        if filesystem.isdir(leftover) and not os.path.islink(leftover):
            filesystem.rmtree(leftover)
        else:
            filesystem.remove(leftover)


def make_public(directory: str) -> None:
    """Gives every file below `directory` mode 0644 (some writers create 0600 files)."""
    if filesystem.is_remote(directory):
        return  # objects have no mode bits
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            if stat.S_IMODE(os.stat(path).st_mode) != PUBLIC_FILE_MODE:
                os.chmod(path, PUBLIC_FILE_MODE)


def check_destination(path: str, overwrite: bool, what: str = "the output",
                      error: type[errors.UserError] = errors.UserError) -> None:
    """Refuses a file where a directory goes, or a non-empty directory unless `overwrite`."""
    if filesystem.isfile(path):
        raise error(f"{what} {path} exists and is a file; give a directory path.")
    if filesystem.isdir(path) and filesystem.listdir(path) and not overwrite:
        raise error(f"{what} {path} exists and is not empty; pass overwrite=True (--overwrite) "
                    "to replace it.")


def _replace_dir(tmp: str, path: str) -> None:
    """Renames the finished `tmp` to `path`; an existing `path` is removed only afterwards."""
    if filesystem.is_remote(path):  # no rename of a prefix: the old objects go first
        filesystem.rmtree(path)
        filesystem.rename(tmp, path)
        return
    if os.path.isdir(path) and os.listdir(path):
        old = f"{path}.old-{secrets.token_hex(4)}"
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old)
    else:
        if os.path.isdir(path):
            os.rmdir(path)
        os.rename(tmp, path)


@contextlib.contextmanager
def atomic_directory(path: str) -> Iterator[str]:
    """Yields an empty temporary directory next to `path`; renamed to `path` on success.

        with atomic_directory("/models/base") as tmp:
            write_everything_into(tmp)

    Files inside are made 0644 before the rename. On an exception the temporary directory is
    removed and `path` (if it existed) is left as it was.
    """
    final = path if filesystem.is_remote(path) else os.path.abspath(path)
    filesystem.makedirs(filesystem.dirname(final))
    tmp = f"{final.rstrip('/')}.tmp-{secrets.token_hex(4)}"
    filesystem.makedirs(tmp)
    try:
        yield tmp
        make_public(tmp)
        _replace_dir(tmp, final)
    finally:
        if filesystem.isdir(tmp):
            filesystem.rmtree(tmp)
