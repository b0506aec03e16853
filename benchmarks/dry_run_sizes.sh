#!/usr/bin/env bash
# Will XXL/XL fit? `train --dry_run` for the paper's batch 32 and lengths (512 inputs + 100 prompt
# -> 8 targets) on the meshes of benchmarks/README.md, with the shipped model files' settings,
# plus XXL on v3-32 without them (the "before" figure). Compiles from shapes on simulated CPU
# devices; reads no checkpoint or data. Usage: benchmarks/dry_run_sizes.sh [OUT_FILE]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-benchmarks/results/dry_run_$(date +%Y-%m-%d).txt}"
python="${PYTHON:-.venv/bin/python}"
run() {  # run NAME DEVICES SIZE MEMORY_GIB FLAGS...
  local name=$1 devices=$2 size=$3 memory=$4; shift 4
  echo "== $name ($devices devices, ${memory} GiB each)"
  XLA_FLAGS=--xla_force_host_platform_device_count=$devices "$python" -m prompt_tuning.train \
    --gin_file=models/t5_1_1_${size}_prompt.gin --gin_file=prompts/from_sampled_vocab.gin \
    --gin_file=runs/prompt_finetune.gin --gin.INITIAL_CHECKPOINT_PATH="'unused'" \
    --gin.MODEL_DIR="'unused'" --gin.MIXTURE_OR_TASK_NAME="'super_glue_boolq_v102'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" --gin.TRAIN_STEPS=30000 \
    --dry_run --device_memory_gib="$memory" "$@"
  echo "exit status $?"
}
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPU cores, jax $("$python" -c 'import jax; print(jax.__version__)')"
  run "XXL, TPU v3-32, submesh (4, 4, 1, 2)" 32 xxl 16 \
    "--gin.partitioning.PjitPartitioner.model_parallel_submesh=(4, 4, 1, 2)"
  run "XXL, 8xH100 80 GB" 8 xxl 74.5 --gin.NUM_PARTITIONS=8
  run "XXL, one H200 141 GB" 1 xxl 131.3
  run "XL, one 80 GB GPU" 1 xl 74.5
  run "XXL, TPU v3-32, before: no remat, no scan, 1-D activations" 32 xxl 16 \
    "--gin.partitioning.PjitPartitioner.model_parallel_submesh=(4, 4, 1, 2)" \
    --gin.REMAT_POLICY="'none'" --gin.SCAN_LAYERS=False \
    --gin.partitioning.PjitPartitioner.activation_partitioning_dims=1
} 2>&1 | tee "$out"
