#!/usr/bin/env bash
# README command 1: train, evaluate and export a prompt on the tiny built-in model and task.
# Sets up .venv on first use. Output goes to ${MODEL_DIR:-/tmp/prompt_tuning_default}.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh
model_dir="${MODEL_DIR:-/tmp/prompt_tuning_default}"
export TF_CPP_MIN_LOG_LEVEL=3
.venv/bin/python -m prompt_tuning.demo --model_dir="$model_dir" "$@"
