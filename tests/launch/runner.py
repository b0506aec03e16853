"""Runs our entry points the way a user does: in a subprocess, or in-process for speed.

In-process runs reset absl flags and gin between calls, so many user-mistake checks share one
interpreter (TensorFlow and JAX imports cost seconds each).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_subprocess(module: str, *args: str, env: dict | None = None, timeout: int = 600) -> Result:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HUB_OFFLINE": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_in_process(module: str, *args: str) -> Result:
    """Calls `module.main(argv)` under the same error handling as the command line."""
    import importlib

    import gin

    from prompt_tuning import cli

    mod = importlib.import_module(module)
    gin.clear_config(clear_constants=True)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.call(mod.main, [module, *args])
    return Result(code, out.getvalue(), err.getvalue())


def snapshot(directory: str) -> dict[str, tuple]:
    """{relative path: (size, mtime, mode, sha256 of the bytes)} of everything under `directory`
    ({} if it does not exist): equal snapshots mean byte-for-byte the same tree."""
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            stat = os.stat(path)
            digest = None
            if name in files:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            found[os.path.relpath(path, directory)] = (stat.st_size, stat.st_mtime,
                                                       stat.st_mode, digest)
    return found


def truncate_checkpoint(model_dir: str, step: int) -> None:
    """Cuts every array file of a step checkpoint short, as a full disk or a bad copy would."""
    state = os.path.join(model_dir, "checkpoints", str(step), "state")
    for root, _, names in os.walk(state):
        if os.path.basename(root) == "d":
            for name in names:
                with open(os.path.join(root, name), "r+b") as f:
                    f.truncate(10)


def flip_array_bytes(item_dir: str, count: int = 8) -> str:
    """Flips `count` bytes in the middle of an orbax item's largest data file (its array bytes),
    as a failing disk or a bad copy would; returns the file."""
    found = [os.path.join(root, name) for root, _, names in os.walk(item_dir)
             if os.path.basename(root) == "d" for name in names]
    path = max(found, key=os.path.getsize)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        data = f.read(count)
        f.seek(os.path.getsize(path) // 2)
        f.write(bytes(b ^ 0x5A for b in data))
    return path
