"""Paths a user gives: resolved once, at the edge, and checked before anything is written.

Every path that comes from a flag or a gin macro (MODEL_DIR, INITIAL_CHECKPOINT_PATH, PROMPT_FILE,
--output, ...) is made absolute against the working directory when the flag is parsed or the
config object is built, so later code (orbax insists on absolute paths, a run may chdir) never
sees a relative one. `gs://` URLs and built-in names (`builtin:tiny_t5`) pass unchanged; a URL
of a scheme the package cannot reach (`s3://...`) is refused here, at the edge, so it never
becomes a local directory named after the URL (`filesystem` reads and writes both kinds).
"""

from __future__ import annotations

import os
from typing import Optional

from prompt_tuning import errors, filesystem

BUILTIN_PREFIX = "builtin:"
# What ships inside the package: the T5 vocabulary, the tiny T5, the built-in task's data.
ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")


def is_local(path: str) -> bool:
    """False for URLs (gs://, s3://) and built-in names, which no local rule applies to."""
    return not (filesystem.is_remote(path) or path.startswith(BUILTIN_PREFIX))


def resolve(path: Optional[str]) -> Optional[str]:
    """`path` made absolute (`~` expanded) against the working directory; None stays None."""
    if path is None:
        return None
    path = os.fspath(path)
    if not isinstance(path, str):
        raise errors.UsageError(f"expected a path, got {path!r}.")
    if not path or path.startswith(BUILTIN_PREFIX):
        return path
    if not is_local(path):
        return filesystem.check_supported(path)
    return os.path.abspath(os.path.expanduser(path))


def _blocking_file(path: str) -> Optional[str]:
    """The first existing non-directory among `path`'s parents, if any (e.g. `file.txt/out`)."""
    parent = os.path.dirname(os.path.abspath(path))
    while parent and not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            return None
        parent = up
    return parent if parent and not os.path.isdir(parent) else None


def check_no_dangling_link(path: str, what: str) -> None:
    """Refuses `path` when it, or a parent, is a symbolic link to nothing: creating it would
    fail with a bare "File exists"."""
    probe = os.path.abspath(path)
    while True:
        if os.path.islink(probe) and not os.path.exists(probe):
            target = os.path.join(os.path.dirname(probe), os.readlink(probe))
            where = "" if probe == os.path.abspath(path) else f": {probe}"
            raise errors.UserError(f"{what} {path}{where} is a dangling symbolic link to "
                                   f"{os.path.normpath(target)}; create that or remove the link.")
        parent = os.path.dirname(probe)
        if parent == probe:
            return
        probe = parent


def check_output_file(path: str, what: str) -> None:
    """`what` (e.g. "--output") may be written as a file at `path`: not a directory, and no
    regular file stands where one of its parent directories would be created."""
    if filesystem.is_remote(path):
        if filesystem.isdir(path):
            raise errors.UserError(f"{what} {path} is a directory; give a file path.")
        return
    check_no_dangling_link(path, what)
    if os.path.isdir(path):
        raise errors.UserError(f"{what} {path} is a directory; give a file path.")
    blocking = _blocking_file(path)
    if blocking:
        raise errors.UserError(f"{what} {path} cannot be created: {blocking} is a file, not a "
                               "directory.")


def check_output_dir(path: str, what: str) -> None:
    """`what` may be created (or used) as a directory at `path`."""
    if filesystem.is_remote(path):
        if filesystem.isfile(path):
            raise errors.UserError(f"{what} {path} exists and is a file; give a directory path.")
        return
    check_no_dangling_link(path, what)
    if os.path.exists(path) and not os.path.isdir(path):
        raise errors.UserError(f"{what} {path} exists and is a file; give a directory path.")
    blocking = _blocking_file(path)
    if blocking:
        raise errors.UserError(f"{what} {path} cannot be created: {blocking} is a file, not a "
                               "directory.")
