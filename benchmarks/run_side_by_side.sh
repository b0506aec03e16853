#!/usr/bin/env bash
# Side by side on one machine: for each mode, our benchmark then the peer's (PEFT) right after it,
# same shapes, 2 threads each, so both see the same machine load. Train modes also run the peer
# with AdamW (its default) besides Adafactor (like for like). Each run is a separate process per mode
# (peak RSS per mode). Results: benchmarks/results/TAG-{ours,peft-adafactor,peft-adamw}-MODE.json,
# TAG-peft-optstate.json and TAG.log (loadavg before each run). Summarise with
#   .venv/bin/python benchmarks/summarize.py benchmarks/results/TAG
# Usage: benchmarks/run_side_by_side.sh [TAG] [shape/timing flags understood by both benchmarks]
#   e.g. benchmarks/run_side_by_side.sh smoke --d_model 64 --d_ff 128 --layers 2 --heads 2 --d_kv 32 \
#            --vocab 256 --inputs_len 16 --steps 3 --warmup 1
# Env: PY (python), PEER (peer script), MODES (comma list), DTYPE (float32, or bfloat16: ours with
# --activation_dtype bfloat16, the peer under --autocast_bf16; full_train stays fp32 for both).
# The first run is our matmul_rate mode: the machine's XLA matmul rate in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-small}; shift || true
PY=${PY:-.venv/bin/python}
PEER=${PEER:-../shared/bench/peft_prompt_bench.py}
MODES=${MODES:-prompt_train,full_train,prompt_infer,base_infer,prompt_generate}
DTYPE=${DTYPE:-float32}
OURS_DTYPE=(--activation_dtype "$DTYPE")
PEER_DTYPE=()
[[ $DTYPE == bfloat16 ]] && PEER_DTYPE=(--autocast_bf16)
OUT=benchmarks/results
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=3 HF_HUB_OFFLINE=1
log() { echo "[$(date -u +%FT%TZ)] $* loadavg=$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/$TAG.log" >&2; }
log "ours matmul_rate"
"$PY" benchmarks/prompt_bench.py --threads 2 --modes matmul_rate --json_out "$OUT/$TAG-ours-matmul_rate.json" > /dev/null
for mode in ${MODES//,/ }; do
  ours=("${OURS_DTYPE[@]}"); peer=("${PEER_DTYPE[@]}")
  [[ $mode == full_train ]] && ours=() && peer=()
  log "ours $mode ${ours[*]}"
  "$PY" benchmarks/prompt_bench.py --threads 2 --modes "$mode" "${ours[@]}" "$@" \
      --json_out "$OUT/$TAG-ours-$mode.json" > /dev/null
  log "peft-adafactor $mode ${peer[*]}"
  "$PY" "$PEER" --threads 2 --optimizer adafactor --modes "$mode" "${peer[@]}" "$@" \
      --json_out "$OUT/$TAG-peft-adafactor-$mode.json" > /dev/null
  if [[ $mode == *_train && -z ${SKIP_ADAMW:-} ]]; then
    log "peft-adamw $mode ${peer[*]}"
    "$PY" "$PEER" --threads 2 --optimizer adamw --modes "$mode" "${peer[@]}" "$@" \
        --json_out "$OUT/$TAG-peft-adamw-$mode.json" > /dev/null
  fi
done
log "peer opt-state"
"$PY" benchmarks/peer_opt_state.py --peer "$PEER" "$@" | tail -1 > "$OUT/$TAG-peft-optstate.json"
log "done"
