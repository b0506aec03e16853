#!/usr/bin/env bash
# README command 1: train, evaluate and export a prompt on the tiny built-in model and task.
# Sets up .venv on first use. The run goes to a new directory of its own (printed), or to
# $MODEL_DIR when set (new or empty; add --resume to continue a demo run there).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh
args=()
[ -n "${MODEL_DIR:-}" ] && args+=("--model_dir=${MODEL_DIR}")
.venv/bin/python -m prompt_tuning.demo "${args[@]}" "$@"
