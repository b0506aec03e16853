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
# Env: PY (python), PEER (peer script), MODES (comma list).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-small}; shift || true
PY=${PY:-.venv/bin/python}
PEER=${PEER:-../shared/bench/peft_prompt_bench.py}
MODES=${MODES:-prompt_train,full_train,prompt_infer,base_infer,prompt_generate}
OUT=benchmarks/results
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=3 HF_HUB_OFFLINE=1
log() { echo "[$(date -u +%FT%TZ)] $* loadavg=$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/$TAG.log" >&2; }
for mode in ${MODES//,/ }; do
  log "ours $mode"
  "$PY" benchmarks/prompt_bench.py --threads 2 --modes "$mode" "$@" --json_out "$OUT/$TAG-ours-$mode.json" > /dev/null
  log "peft-adafactor $mode"
  "$PY" "$PEER" --threads 2 --optimizer adafactor --modes "$mode" "$@" \
      --json_out "$OUT/$TAG-peft-adafactor-$mode.json" > /dev/null
  if [[ $mode == *_train ]]; then
    log "peft-adamw $mode"
    "$PY" "$PEER" --threads 2 --optimizer adamw --modes "$mode" "$@" \
        --json_out "$OUT/$TAG-peft-adamw-$mode.json" > /dev/null
  fi
done
log "peer opt-state"
"$PY" benchmarks/peer_opt_state.py --peer "$PEER" "$@" | tail -1 > "$OUT/$TAG-peft-optstate.json"
log "done"
