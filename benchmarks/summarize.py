#!/usr/bin/env python3
"""Markdown table from one side-by-side run: `python benchmarks/summarize.py benchmarks/results/TAG`.

Reads TAG-{ours,peft-adafactor,peft-adamw}[-MODE].json (one run per file, merged) and
TAG-peft-optstate.json (missing files are skipped); prints one row per mode and implementation.
"""

from __future__ import annotations

import glob
import json
import os
import sys

MODES = ["prompt_train", "full_train", "prompt_infer", "base_infer", "prompt_generate"]
RUNS = [("ours", "ours (JAX, Adafactor)"), ("peft-adafactor", "PEFT, Adafactor"),
        ("peft-adamw", "PEFT, AdamW")]


def load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def fmt_bytes(n):
    if n is None:
        return "-"
    if n < 2**10:
        return f"{n} B"
    if n < 2**20:
        return f"{n / 2**10:.1f} KiB"
    return f"{n / 2**20:.1f} MiB"


def main(prefix: str) -> None:
    runs = {}
    for key, _ in RUNS:
        paths = sorted(glob.glob(f"{prefix}-{key}.json") + glob.glob(f"{prefix}-{key}-*_*.json"))
        merged = None
        for path in paths:
            rec = load(path)
            if merged is None:
                merged = rec
            else:
                merged["results"].update(rec["results"])
        runs[key] = merged
    optstate = load(f"{prefix}-peft-optstate.json")
    print("| mode | implementation | step ms median | step ms min | steps/s | examples/s | cpu_util "
          "| load1 before/after | peak RSS MiB | compile s | trainable params | optimizer state |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for mode in MODES:
        for key, label in RUNS:
            rec = runs.get(key)
            if rec is None or mode not in rec["results"]:
                continue
            r = rec["results"][mode]
            if "error" in r:
                print(f"| {mode} | {label} | error | | | | | | | | | |")
                continue
            if key.startswith("peft") and mode in ("prompt_infer", "base_infer", "prompt_generate") \
                    and key != "peft-adafactor":
                continue  # the optimizer does not matter for inference: one PEFT row is enough
            if mode in ("prompt_infer", "base_infer", "prompt_generate"):
                label = "ours (JAX)" if key == "ours" else "PEFT"
            opt = None
            if key == "ours":
                opt = r.get("opt_state_bytes")
            elif optstate and mode in ("prompt_train", "full_train"):
                opt = optstate["results"].get(f"{mode}/{key.split('-')[1]}", {}).get("opt_state_bytes")
            train = mode.endswith("train")
            print(f"| {mode} | {label} | {r['step_ms_median']} | {r['step_ms_min']} | {r['steps_per_s']} "
                  f"| {r['examples_per_s']} | {r['cpu_util']} "
                  f"| {r.get('loadavg1_before')}/{r.get('loadavg1_after')} | {r['peak_rss_mib']} "
                  f"| {r.get('compile_s', '-')} | {r['trainable_params'] if train else '-'} "
                  f"| {fmt_bytes(opt) if train else '-'} |")


if __name__ == "__main__":
    main(sys.argv[1])
