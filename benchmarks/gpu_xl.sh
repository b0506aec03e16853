#!/usr/bin/env bash
# Prepared for the `device` tool (one GPU; its image has JAX with CUDA, flax, optax): T5 1.1 XL
# prompt tuning in bfloat16 at the paper's batch and lengths (batch 32, 512 input tokens + a
# 100-token prompt, 8 targets, dropout 0.1, Adafactor), then scoring the same batch. Reports
# steps/s, XLA's FLOP count per step (forward + the activation-gradient backward: the frozen
# weights get no gradient) and MFU against PEAK_TFLOPS (default 989: the H200's dense bf16 peak
# on its datasheet; the device notes measured about 790 for an 8192^3 product through PyTorch).
# Random weights made on the host, so no checkpoint is needed. One call, about 5 minutes:
#
#   run: bash benchmarks/gpu_xl.sh        (writes $OUT/gpu_xl_bf16.json, or benchmarks/results/)
#   here, to check the script on CPU with a tiny shape: SMOKE=1 bash benchmarks/gpu_xl.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the package from this checkout, not installed there
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DEST=${OUT:-benchmarks/results}
mkdir -p "$DEST"
SHAPE=(--d_model 2048 --d_ff 5120 --layers 24 --heads 32 --d_kv 64
       --batch 32 --inputs_len 512 --prompt_len 100 --targets_len 8 --steps 10 --warmup 3)
if [ "${SMOKE:-0}" = 1 ]; then
  SHAPE=(--d_model 64 --d_ff 128 --layers 2 --heads 2 --d_kv 32
         --batch 4 --inputs_len 32 --prompt_len 10 --targets_len 4 --steps 2 --warmup 1)
fi
"$PY" -c "import jax; print('devices:', jax.devices())"
"$PY" benchmarks/prompt_bench.py "${SHAPE[@]}" --activation_dtype bfloat16 \
  --modes prompt_train,prompt_infer --threads "$(nproc)" --peak_tflops "${PEAK_TFLOPS:-989}" \
  --json_out "$DEST/gpu_xl_bf16.json"
"$PY" - "$DEST/gpu_xl_bf16.json" <<'PYEOF'
import json, sys
results = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["results"]
for mode, r in results.items():
    print(f"{mode}: {r.get('step_ms_median')} ms/step ({r.get('steps_per_s')} steps/s), "
          f"{r.get('step_gflop')} GFLOP/step, {r.get('gflops_per_s')} GFLOP/s, MFU {r.get('mfu')}")
PYEOF
