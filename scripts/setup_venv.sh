#!/usr/bin/env bash
# Creates .venv (CPython 3.11) and installs the package with pinned dependencies; idempotent.
# Usage: scripts/setup_venv.sh [extras]   e.g. scripts/setup_venv.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
stamp=".venv/.installed-${extras:-base}-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  # torch==2.13.0 (test extra) resolves to the CPU build on this machine's disk.
  .venv/bin/pip install --quiet -e "$spec"
  touch "$stamp"
fi
