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
import tokenize
from typing import Callable, Sequence

import gin

from prompt_tuning import atomic_write

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


_INCLUDE = re.compile(r"""^\s*include\s+['"]([^'"]+)['"]""", re.MULTILINE)


def _prompt_files(gin_files: Sequence[str], search_paths: Sequence[str]) -> dict[str, str]:
    """{real path: how it came in} of every prompts/ file the command line reaches, includes too."""
    found: dict[str, str] = {}
    visited: set[str] = set()

    def visit(name: str, via: str) -> None:
        try:
            path = os.path.realpath(resolve_gin_file(name, search_paths))
        except ValueError:
            return  # gin reports a missing include itself
        if path in visited:
            return
        visited.add(path)
        if _kind_rank(name) == _KIND_ORDER.index("prompts/"):
            found.setdefault(path, name if via == name else f"{name}, included by {via}")
        with open(path) as f:
            for included in _INCLUDE.findall(f.read()):
                visit(included, via)

    for name in gin_files:
        visit(name, name)
    return found


def check_one_prompt_file(gin_files: Sequence[str], search_paths: Sequence[str]) -> None:
    """Refuses two prompt initializers: whichever gin parsed last would win without a word.

    Canonical order settles a prompt file against a model file, but not against a run file that
    itself includes a prompt file (runs/embedded_default.gin does).
    """
    found = _prompt_files(gin_files, search_paths)
    if len(found) > 1:
        raise ValueError(f"More than one prompt initializer file: {'; '.join(found.values())}. "
                         "Give one prompts/ file (or bind PromptConfig.init in your own file).")


def parse(gin_files: Sequence[str], gin_bindings: Sequence[str],
          search_paths: Sequence[str] = ()) -> None:
    """Parses files (canonical order) and bindings; the package's configs/ is always searchable."""
    paths = [p for entry in search_paths for p in entry.split(",") if p] + [CONFIG_DIR]
    for path in paths:
        gin.add_config_file_search_path(path)
    files = [resolve_gin_file(f, paths) for f in canonical_order(gin_files)]
    check_one_prompt_file(gin_files, paths)
    # gin logs "Path not found" at ERROR for every search path it tries before the one that
    # holds an include; a truly missing include still raises, so those lines are only noise.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        # Finalizing runs gin's checks: a macro left at %gin.REQUIRED, or a reference to an
        # unknown configurable, fails here, before any work, instead of reaching the code as a
        # placeholder object.
        gin.parse_config_files_and_bindings(files, list(gin_bindings), finalize_config=True)
    except (ValueError, SyntaxError, NameError, ImportError, KeyError, TypeError,
            tokenize.TokenError) as e:
        raise ValueError(_required_macro_message(_one_line(e))
                         or f"Bad gin config: {_gin_error_text(e)}") from e
    finally:
        root.setLevel(level)


def _gin_error_text(error: BaseException) -> str:
    """One line for a gin parse error (a tokenizer error is a tuple: say what it means)."""
    if isinstance(error, tokenize.TokenError):
        return f"{error.args[0]} (unbalanced brackets or quotes in a file or --gin. value?)"
    return _one_line(error)


def _required_macro_message(message: str) -> str | None:
    """`required macro X is not set ...` when gin reports a macro left at %gin.REQUIRED."""
    required = re.search(r"(\w+)/macro\.value set to `?%gin\.REQUIRED", message)
    if not required:
        return None
    name = required.group(1)
    return f"required macro {name} is not set (use --gin.{name}=...)"


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def save_operative_config(model_dir: str, name: str = "config.gin") -> str:
    return atomic_write.write_text_atomically(os.path.join(model_dir, name),
                                              gin.operative_config_str())


def run_cli(main: Callable[[], None]) -> None:
    """Runs `main`; a user error becomes one `error: ...` line on stderr and exit code 1."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as e:
        message = _one_line(e)
        # gin reports a missing REQUIRED macro in its own words; say which macro.
        message = _required_macro_message(message) or message
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
