#!/usr/bin/env bash
# README command 2 (and .ci/run): set up .venv with the test oracles, then run the test suite.
# Usage: scripts/test.sh [--fast] [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh test
export TF_CPP_MIN_LOG_LEVEL=3 HF_HUB_OFFLINE=1
# --fast: the tier for a development loop, without the end-to-end runs marked slow.
marker=()
if [ "${1:-}" = "--fast" ]; then
  shift
  marker=(-m "not slow")
fi
set +e
.venv/bin/python -m pytest tests -q -p no:cacheprovider -n 2 --dist loadfile "${marker[@]}" "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test: that is a failure of this script's purpose.
[ "$rc" -eq 5 ] && { echo "no tests ran"; exit 1; }
exit "$rc"
