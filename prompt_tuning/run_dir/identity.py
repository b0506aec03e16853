"""What a run directory holds and whether this run may use it: `MODEL_DIR/run.json`.

run.json records the run's identity (`TrainConfig.identity()`: the whole config, less what may
change on resume). A run refuses a MODEL_DIR that holds another run, naming every difference;
one that is not a run directory at all; or one it cannot write. Nothing here writes, except
`write_run_file`.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Mapping, Optional

from prompt_tuning import atomic_write, filesystem, paths
from prompt_tuning.errors import RunDirError
from prompt_tuning.run_dir.lock import LOCK_FILE

RUN_FILE = "run.json"


def _writable(directory: str) -> tuple[bool, Optional[str]]:
    """(whether files can be created in `directory`, a note on how that was decided).

    `os.access` answers for permission bits, which root ignores; for root (the usual user in
    containers) a file is really created and removed, and the directory's times are restored.
    """
    if not os.access(directory, os.W_OK):
        return False, None
    if os.geteuid() != 0:
        return True, None
    before = os.stat(directory)
    try:
        fd, path = tempfile.mkstemp(dir=directory, prefix=".write-probe-")
    except OSError:
        return False, None
    os.close(fd)
    os.unlink(path)
    os.utime(directory, ns=(before.st_atime_ns, before.st_mtime_ns))
    note = None
    if not before.st_mode & 0o222:
        note = (f"{directory} has no write permission bits, but this process runs as root and "
                "could create a file there (checked), so MODEL_DIR is used.")
    return True, note


def _differences(previous: Mapping[str, Any], current: Mapping[str, Any], prefix: str = ""
                 ) -> list[str]:
    """'name: was X, now Y' for every leaf that differs between two nested dicts."""
    found = []
    for key in sorted(set(previous) | set(current), key=str):
        name = f"{prefix}{key}"
        before, after = previous.get(key, "<unset>"), current.get(key, "<unset>")
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            found += _differences(before, after, name + ".")
        elif before != after:
            found.append(f"{name} was {before!r}, now {after!r}")
    return found


def check_model_dir(model_dir: str, run_description: Mapping[str, Any]) -> list[str]:
    """Refuses an unwritable MODEL_DIR or one holding a different run; writes nothing.

    Returns notes worth showing the user (e.g. how writability was decided).
    """
    if filesystem.is_remote(model_dir):
        _check_contents(model_dir, run_description)  # a bucket we cannot write fails on write
        return []
    paths.check_no_dangling_link(model_dir, "MODEL_DIR")
    probe = model_dir
    while not os.path.exists(probe):
        parent = os.path.dirname(os.path.abspath(probe))
        if parent == probe:
            break
        probe = parent
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise RunDirError(f"MODEL_DIR {model_dir} exists and is not a directory.")
    if not os.path.isdir(probe):  # root may write anywhere, but not below a file
        raise RunDirError(f"MODEL_DIR {model_dir} cannot be created: {probe} is not a directory.")
    writable, note = _writable(probe)
    if not writable:
        raise RunDirError(f"MODEL_DIR {model_dir} is not writable (no write access to {probe}).")
    _check_contents(model_dir, run_description)
    return [note] if note else []


def _check_contents(model_dir: str, run_description: Mapping[str, Any]) -> None:
    """Refuses a MODEL_DIR that holds something else than this run."""
    run_file = filesystem.join(model_dir, RUN_FILE)
    # A run killed while writing its first run.json leaves only the temporary file: still ours.
    ours = {RUN_FILE + ".tmp", LOCK_FILE}
    if (filesystem.isdir(model_dir) and set(filesystem.listdir(model_dir)) - ours
            and not filesystem.exists(run_file)):
        raise RunDirError(f"MODEL_DIR {model_dir} is not empty and holds no {RUN_FILE}: it is not "
                          "a prompt-tuning run directory. Choose a new MODEL_DIR.")
    if filesystem.exists(run_file):
        previous = read_run_file(model_dir)
        diffs = _differences(previous, dict(run_description))
        if diffs:
            shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4
                                             else "")
            raise RunDirError(f"MODEL_DIR {model_dir} holds a different run ({shown}); resume it "
                              "with the same config (only TRAIN_STEPS, the periods, "
                              "CHECKPOINTS_TO_KEEP and the partitioning may change) or choose a "
                              "new MODEL_DIR.")


def read_run_file(model_dir: str) -> dict[str, Any]:
    """MODEL_DIR/run.json: what the run is."""
    path = filesystem.join(model_dir, RUN_FILE)
    try:
        data = json.loads(filesystem.read_text(path))
    except (OSError, ValueError) as e:
        raise RunDirError(f"{path} cannot be read ({e}); it is not a prompt-tuning run "
                          "directory, or its run.json was edited.") from e
    if not isinstance(data, dict):
        raise RunDirError(f"{path} does not hold a JSON object.")
    return data


def write_run_file(model_dir: str, run_description: Mapping[str, Any]) -> None:
    """Writes MODEL_DIR/run.json atomically (a killed run leaves the old file or the new one)."""
    path = filesystem.join(model_dir, RUN_FILE)
    # A fixed temporary name: check_model_dir recognises it as this run's own leftover.
    atomic_write.write_text_atomically(
        path, json.dumps(dict(run_description), indent=2, sort_keys=True), tmp=path + ".tmp")
