"""Every file the package reads or writes, on a local disk or in Cloud Storage, through one layer.

A path is either local (`/runs/rte`, `runs/rte`) or a `gs://bucket/key` URL; built-in names
(`builtin:tiny_t5`) never reach this module. Any other URL scheme (`s3://`, `hdfs://`, ...) is
refused in one line (`check_supported`), never taken for a local directory named after the URL.

Local paths go to `os`; `gs://` paths to `etils.epath`, the layer orbax itself writes its
checkpoints' files through, backed by fsspec's `gcsfs`. One client for every `gs://` path this
package touches (ours and orbax's), rather than TensorFlow's `tf.io.gfile`: gcsfs finds an
emulator through `STORAGE_EMULATOR_HOST`, the variable Google's storage clients read, while
TensorFlow's GCS client has its endpoint compiled in; and the commands that read no data (score,
serve, export) never import TensorFlow. Array data inside orbax checkpoints goes through
TensorStore's own GCS driver. `configure()` derives every client's setting from that one
variable (see its docstring); it runs when this module is imported, before any client is made.

Cloud Storage has objects, not directories: `makedirs` is a no-op there, `isdir` means "some
object lies below", and a single object's upload is atomic (readers see the old object or the
new one, never a part). `atomic_write` builds on that.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from typing import IO, Iterator, Optional

from prompt_tuning import errors

# The schemes this package reads and writes; anything else with `://` is refused.
SUPPORTED_SCHEMES = ("gs",)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"


def configure(environ: Optional[dict] = None) -> None:
    """Sets the storage clients' own variables, each only where the user has not set it.

    * `EPATH_USE_TF=false`: etils' epath (orbax's file layer) would otherwise send `gs://`
      through `tf.io.gfile` whenever TensorFlow is installed; it goes through gcsfs instead, the
      same client as ours, so orbax's metadata and our files meet the same endpoint.
    * `GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`: gcsfs would ask a gRPC control plane for each
      bucket's layout (zonal buckets), a round trip per bucket that an emulator never answers
      (60 s time-outs); standard buckets need none of it.
    * gcsfs without its listings cache (fsspec's configuration for the `gs` protocol): objects
      appear from other processes and from TensorStore (orbax's arrays), which a cached listing
      would not show (a reader of a live run must see the writer's new steps).
    * With `STORAGE_EMULATOR_HOST` set (an emulator's `http://host:port`): TensorStore's
      `TENSORSTORE_GCS_HTTP_URL`, its own name for the same endpoint. gcsfs reads the variable
      itself. A user's emulator set-up is therefore that one variable.
    """
    env = os.environ if environ is None else environ
    env.setdefault("EPATH_USE_TF", "false")
    env.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    if environ is None:
        from fsspec.config import conf  # pylint: disable=import-outside-toplevel
        conf.setdefault("gs", {}).setdefault("use_listings_cache", False)
    emulator = env.get(EMULATOR_ENV)
    if emulator:
        if "://" not in emulator:  # Google's clients accept a bare host:port
            emulator = f"http://{emulator}"
        env.setdefault("TENSORSTORE_GCS_HTTP_URL", emulator.rstrip("/"))


configure()


def scheme(path: str) -> Optional[str]:
    """'gs' for `gs://b/k`, None for a local path."""
    match = _SCHEME.match(os.fspath(path))
    return match.group(1).lower() if match else None


def is_remote(path: str) -> bool:
    """True for object-store URLs (`gs://...`)."""
    return scheme(path) is not None


def check_supported(path: str, what: str = "path") -> str:
    """`path`, or a UsageError naming the scheme if this package cannot reach it."""
    found = scheme(path)
    if found is not None and found not in SUPPORTED_SCHEMES:
        raise errors.UsageError(
            f"{what} {path}: {found}:// is not supported; give a local path or a gs:// URL.")
    if found == "gs" and not re.match(r"^gs://[^/]+", os.fspath(path)):
        raise errors.UsageError(f"{what} {path}: a gs:// URL needs a bucket (gs://BUCKET/...).")
    return path


def client(path: str):
    """fsspec's filesystem object for the URL `path` (gcsfs for gs://), for what epath does not
    offer: server-side copies, one-request listings, uploads with a precondition."""
    import fsspec  # pylint: disable=import-outside-toplevel
    return fsspec.filesystem(scheme(path))


def _epath(path: str):
    from etils import epath  # pylint: disable=import-outside-toplevel
    return epath.Path(path)


def join(base: str, *parts: str) -> str:
    """`base/part/...`, for local paths and URLs alike (URLs always join with '/')."""
    if is_remote(base):
        return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])
    return os.path.join(base, *parts)


def dirname(path: str) -> str:
    if is_remote(path):
        head = path.rstrip("/").rsplit("/", 1)[0]
        return head if head.count("/") >= 2 and not head.endswith(":/") else path
    return os.path.dirname(path)


def basename(path: str) -> str:
    """The last part of `path`, a trailing '/' ignored."""
    if is_remote(path):
        return path.rstrip("/").rsplit("/", 1)[-1]
    return os.path.basename(os.path.normpath(path))


def exists(path: str) -> bool:
    return _epath(path).exists() if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    return _epath(path).is_dir() if is_remote(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
    return _epath(path).is_file() if is_remote(path) else os.path.isfile(path)


def listdir(path: str) -> list[str]:
    """The names directly below `path` (files and directories), sorted."""
    if is_remote(path):
        return sorted(p.name for p in _epath(path).iterdir())
    return sorted(os.listdir(path))


def makedirs(path: str) -> None:
    """Creates `path` and its parents (nothing to create in an object store)."""
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)


def open_file(path: str, mode: str = "rb") -> IO:
    """A file object for `path` ('r', 'rb', 'w', 'wb'); text modes are UTF-8."""
    if is_remote(path):
        return _epath(path).open(mode, encoding=None if "b" in mode else "utf-8")
    return open(path, mode, encoding=None if "b" in mode else "utf-8")


def read_bytes(path: str) -> bytes:
    with open_file(path, "rb") as f:
        return f.read()


def utf8_lines(path: str, error: type[errors.UserError] = errors.UserError
               ) -> Iterator[tuple[int, str]]:
    """(line number from 1, line with its newline) of the text file at `path` (user files: JSONL
    inputs, gin files, our JSON). A byte that is not UTF-8 raises `error` naming `path:line` and
    its column, instead of Python's bare codec message."""
    with open_file(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise error(f"{path}:{number}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at "
                            f"column {e.start + 1}); save the file as UTF-8.") from None


def read_text(path: str, error: type[errors.UserError] = errors.UserError) -> str:
    """The whole file as UTF-8 text (see `utf8_lines`)."""
    return "".join(line for _, line in utf8_lines(path, error))


def write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` as it is (no temporary; see `atomic_write` for that)."""
    if is_remote(path):
        _epath(path).write_bytes(data)
        return
    with open(path, "wb") as f:
        f.write(data)


def remove(path: str, missing_ok: bool = True) -> None:
    """Removes the file `path`."""
    try:
        if is_remote(path):
            _epath(path).unlink()
        else:
            os.unlink(path)
    except FileNotFoundError:
        if not missing_ok:
            raise


def rmtree(path: str) -> None:
    """Removes `path` and everything below it; nothing there is fine."""
    if is_remote(path):
        with contextlib.suppress(FileNotFoundError):
            _epath(path).rmtree()
        return
    shutil.rmtree(path, ignore_errors=True)


def rename(src: str, dst: str) -> None:
    """Moves a file or a directory. Atomic on a local disk; in an object store each object is
    copied on the server and then deleted, so a reader may see part of a moved directory."""
    if is_remote(src) != is_remote(dst):
        raise ValueError(f"cannot move {src} to {dst}: one is local, the other is not.")
    if is_remote(src):
        # Server-side copies, then the deletion (not gcsfs's `mv`, which tries a move API
        # first that not every endpoint has, and logs a traceback when it falls back).
        gcs = client(src)
        recursive = gcs.isdir(src)
        gcs.copy(src, dst, recursive=recursive)
        gcs.rm(src, recursive=recursive)
    else:
        os.replace(src, dst)


def upload_dir(local: str, remote: str, last: tuple[str, ...] = ()) -> None:
    """Copies every file below the local directory `local` to the same names below `remote`;
    files named in `last` go after all the others (a reader that waits for them, as TFDS
    waits for `dataset_info.json`, never sees a partial copy)."""
    files = sorted(walk_files(local), key=lambda p: (os.path.basename(p) in last, p))
    for path in files:
        with open(path, "rb") as f:
            write_bytes(join(remote, *os.path.relpath(path, local).split(os.sep)), f.read())


def size(path: str) -> int:
    return _epath(path).stat().length if is_remote(path) else os.path.getsize(path)


def walk_files(path: str) -> Iterator[str]:
    """Every file below the directory `path` (full paths)."""
    if is_remote(path):
        # One listing request for the whole prefix (epath refuses `**` on GCS).
        for name in client(path).find(path):
            yield f"{scheme(path)}://{name}"
        return
    for root, _, files in os.walk(path):
        for name in files:
            yield os.path.join(root, name)
