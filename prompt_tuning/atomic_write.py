"""Writing a file so that it appears complete or not at all (run.json, config.gin, JSONL outputs).

The text goes to a temporary sibling (same filesystem), is flushed to disk, and is renamed over
the destination; on any failure the temporary file is removed and the destination is untouched.
"""

from __future__ import annotations

import os
import tempfile
from typing import Optional


def write_text_atomically(path: str, text: str, tmp: Optional[str] = None) -> str:
    """Writes `text` to `path` atomically (mode 0644); returns `path`.

    Args:
      path: the destination; its directory is created if missing.
      text: the whole content.
      tmp: a fixed temporary name, for callers that must recognise a leftover of a killed write
        (MODEL_DIR's `run.json.tmp`); default: a unique `.<name>.tmp-*` sibling.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if tmp is None:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.tmp-")
        handle = os.fdopen(fd, "w")
    else:
        handle = open(tmp, "w")  # pylint: disable=consider-using-with
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from other users
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
