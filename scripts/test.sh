#!/usr/bin/env bash
# README command 2 (and .ci/run): set up .venv with the test oracles, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh test
export TF_CPP_MIN_LOG_LEVEL=3 HF_HUB_OFFLINE=1
set +e
.venv/bin/python -m pytest tests -q -p no:cacheprovider -n 2 --dist loadfile "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test: that is a failure of this script's purpose.
[ "$rc" -eq 5 ] && { echo "no tests ran"; exit 1; }
exit "$rc"
