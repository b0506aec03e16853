#!/usr/bin/env python3
"""Benchmark: how long the commands that read no data take to start, and their peak memory.

Times, `--runs` times each, on the shipped tiny T5 (or `--checkpoint`) with the compilation
cache as the user has it:
- `python -m prompt_tuning.score` on 16 text examples (wall time and peak RSS of the process);
- `python -m prompt_tuning.serve` with one random prompt: seconds to its "serving ..." line, to
  the answer of one text /generate request, and its peak RSS then (read from /proc).
Each process also reports whether TensorFlow was loaded into it (it should not be: these
commands tokenize with SentencePiece alone). Prints one JSON object.

  python benchmarks/command_startup.py [--runs 3] [--checkpoint PATH] [--width 64]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

from serve_bench import start_server

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="builtin:tiny_t5")
    p.add_argument("--width", type=int, default=64, help="the model's embedding width")
    p.add_argument("--runs", type=int, default=3)
    return p.parse_args()


def _loads_tensorflow(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as f:
        return any("tensorflow" in line for line in f)


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def time_score(checkpoint: str, workdir: str) -> dict:
    inputs = os.path.join(workdir, "in.jsonl")
    with open(inputs, "w") as f:
        for i in range(16):
            f.write(json.dumps({"inputs": f"sentence: film number {i} was a joy",
                                "targets": "positive"}) + "\n")
    # The process reports, as it exits, whether TensorFlow was imported and its peak RSS.
    code = ("import atexit, runpy, sys\n"
            "def report():\n"
            "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
            "    print('REPORT', 'tensorflow' in sys.modules, int(hwm.split()[1]),\n"
            "          file=sys.stderr)\n"
            "atexit.register(report)\n"
            "sys.argv = sys.argv[1:]\n"
            "runpy.run_module('prompt_tuning.score', run_name='__main__')\n")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, "prompt_tuning.score",
                           f"--checkpoint={checkpoint}", f"--inputs={inputs}",
                           f"--output={os.path.join(workdir, 'out.jsonl')}"],
                          cwd=REPO, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    _, tensorflow, hwm_kib = proc.stderr.strip().splitlines()[-1].split()
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(int(hwm_kib) / 1024, 1),
            "tensorflow_loaded": tensorflow == "True"}


def post_json(url: str, body: dict, timeout: float) -> dict:
    """POSTs `body` as JSON and returns the JSON answer; an error status raises (urllib, from
    the standard library: the benchmark runs in the package's own venv, without test extras)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def time_serve(checkpoint: str, width: int, workdir: str) -> dict:
    prompt = os.path.join(workdir, "prompt.npy")
    np.save(prompt, np.random.default_rng(0).normal(size=(20, width)).astype(np.float32))
    t0 = time.perf_counter()
    proc, base = start_server(checkpoint, [f"--prompt=a={prompt}"])
    ready = time.perf_counter() - t0
    try:
        post_json(f"{base}/generate", {"prompt": "a", "max_decode_length": 4,
                                       "inputs": "sentence: a fine film"}, timeout=300)
        answered = time.perf_counter() - t0
        out = {"ready_s": round(ready, 2), "first_answer_s": round(answered, 2),
               "peak_rss_mib": round(_peak_rss_mib(proc.pid), 1),
               "tensorflow_loaded": _loads_tensorflow(proc.pid)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return out


def main() -> None:
    args = _parse()
    with tempfile.TemporaryDirectory() as workdir:
        score = [time_score(args.checkpoint, workdir) for _ in range(args.runs)]
        serve = [time_serve(args.checkpoint, args.width, workdir) for _ in range(args.runs)]
    median = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    print(json.dumps({
        "checkpoint": args.checkpoint, "cpus": len(os.sched_getaffinity(0)),
        "score": {"runs": score, "median_wall_s": median(score, "wall_s"),
                  "median_peak_rss_mib": median(score, "peak_rss_mib")},
        "serve": {"runs": serve, "median_ready_s": median(serve, "ready_s"),
                  "median_first_answer_s": median(serve, "first_answer_s"),
                  "median_peak_rss_mib": median(serve, "peak_rss_mib")},
    }, indent=1))


if __name__ == "__main__":
    main()
