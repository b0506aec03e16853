"""T5X-style launching: `--gin_file`, `--gin_bindings`, `--gin.NAME=VALUE`, `--gin_search_paths`.

Two differences from T5X, both to remove traps:
* gin files are parsed in a canonical order by kind (models/ then prompts/ then runs/ then
  anything else; command-line order within a kind), so a prompt file cannot be silently
  overwritten by a model file given after it. Shipped model files bind nothing a prompt file
  binds, so the order would not matter anyway; the sort keeps user files honest too.
* every user mistake ends as one `error: ...` line and exit code 1.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Callable, Sequence

import gin

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
_KIND_ORDER = ("models/", "prompts/", "runs/")


def rewrite_gin_args(argv: Sequence[str]) -> list[str]:
    """`--gin.NAME=VALUE` -> `--gin_bindings=NAME = VALUE` (absl has no such flag)."""
    out = []
    for arg in argv:
        if arg.startswith("--gin."):
            body = arg[len("--gin."):]
            if "=" not in body or not body.split("=", 1)[0]:
                raise ValueError(f"Bad gin override {arg!r}: expected --gin.NAME=VALUE, "
                                 "e.g. --gin.TRAIN_STEPS=1000 or --gin.MODEL_DIR=\"'/tmp/run'\".")
            name, value = body.split("=", 1)
            out.append(f"--gin_bindings={name} = {value}")
        else:
            out.append(arg)
    return out


def _kind_rank(path: str) -> int:
    normalized = path.replace(os.sep, "/")
    for rank, kind in enumerate(_KIND_ORDER):
        if normalized.startswith(kind) or f"/{kind}" in normalized:
            return rank
    return len(_KIND_ORDER)


def canonical_order(gin_files: Sequence[str]) -> list[str]:
    """Model files, then prompt files, then run files, then others (stable within a kind)."""
    return sorted(gin_files, key=_kind_rank)


def resolve_gin_file(name: str, search_paths: Sequence[str]) -> str:
    if os.path.isfile(name):
        return name
    for directory in search_paths:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    raise ValueError(f"Unknown gin file {name!r}: not found in {list(search_paths)}.")


def parse(gin_files: Sequence[str], gin_bindings: Sequence[str],
          search_paths: Sequence[str] = ()) -> None:
    """Parses files (canonical order) and bindings; the package's configs/ is always searchable."""
    paths = [p for entry in search_paths for p in entry.split(",") if p] + [CONFIG_DIR]
    for path in paths:
        gin.add_config_file_search_path(path)
    files = [resolve_gin_file(f, paths) for f in canonical_order(gin_files)]
    # gin logs "Path not found" at ERROR for every search path it tries before the one that
    # holds an include; a truly missing include still raises, so those lines are only noise.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        gin.parse_config_files_and_bindings(files, list(gin_bindings), finalize_config=False)
    except (ValueError, SyntaxError, NameError, ImportError, KeyError) as e:
        raise ValueError(f"Bad gin config: {_one_line(e)}") from e
    finally:
        root.setLevel(level)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def save_operative_config(model_dir: str, name: str = "config.gin") -> str:
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, name)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(gin.operative_config_str())
    os.replace(tmp, path)
    return path


def run_cli(main: Callable[[], None]) -> None:
    """Runs `main`; a user error becomes one `error: ...` line on stderr and exit code 1."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as e:
        message = _one_line(e)
        # gin reports a missing REQUIRED macro in its own words; say which macro.
        required = re.search(r"(\w+)/macro\.value set to %gin\.REQUIRED", message)
        if required:
            message = f"required macro {required.group(1)} is not set (use --gin.{required.group(1)}=...)"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
