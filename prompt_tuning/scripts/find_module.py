r"""Prints the directory a Python package is installed in, as the reference's scripts expect.

  PROMPT_DIR="`python3 -m prompt_tuning.scripts.find_module prompt_tuning`/.."
  python -m prompt_tuning.train --gin_search_paths="${PROMPT_DIR}" \
    --gin_file=prompt_tuning/configs/models/t5_1_1_base_prompt.gin ...

The reference's scripts also look up `t5x` and `flaxformer`, which prompt_tuning does not need
(and which are not on PyPI). For a package that is not installed this prints nothing to stdout
and a note to stderr, and exits 0: the script's search path then points nowhere, which is
harmless, instead of the script stopping at its first line.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Optional, Sequence


def module_dir(name: str) -> Optional[str]:
    """The directory of package or module `name` (its `__init__.py`'s or file's), or None."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a parent package missing, or an empty/relative name
        return None
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return None
    return os.path.dirname(os.path.abspath(spec.origin))


USAGE = "usage: python -m prompt_tuning.scripts.find_module MODULE"


def main(argv: Sequence[str]) -> int:
    if len(argv) == 2 and argv[1] in ("-h", "--help", "-help", "--helpfull"):
        print(f"{USAGE}\n\n{__doc__.strip()}")
        return 0
    if len(argv) != 2 or not argv[1]:
        print(f"error: {USAGE}", file=sys.stderr)
        return 2
    if argv[1].startswith("-"):  # no module name starts with '-': a flag we do not have
        print(f"error: unknown flag {argv[1]} ({USAGE}; --help says more)", file=sys.stderr)
        return 2
    directory = module_dir(argv[1])
    if directory is None:
        print(f"note: module {argv[1]} is not installed (prompt_tuning does not need it).",
              file=sys.stderr)
        return 0
    print(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
