#!/usr/bin/env python3
"""Benchmark: the server's start-up to ready, and its requests/s and latency percentiles at a
few concurrency levels.

Starts `python -m prompt_tuning.serve` on 127.0.0.1 (a free port) with `--checkpoint` (default
the shipped tiny T5), 3 prompts of different lengths (random, P = 5, 20, 100) and the server's
default limits (its warm-up compiles every batch shape they allow before it says ready). With
`--cold_start`, it first starts it twice over an empty compilation cache (PT_COMPILATION_CACHE_DIR
in a new temporary directory): cold (every program compiled) and warm (read back from that
cache), and prints the seconds to the "serving" line and to "ready" of each. Then, on a warm
server (over that cache with --cold_start), for each concurrency level C it keeps C requests
in flight (a real HTTP client, httpx over asyncio) until `--requests` have completed, half
/score and half /generate (`--decode` tokens), the prompts mixed; the first level is the
server's first traffic (nothing was sent before). Prints one JSON line per level: requests/s,
p50/p90/p99 latency in ms, how many batches the server ran for them and how many programs it
had compiled (from /health: the same before and after).

  python benchmarks/serve_bench.py [--levels 1,8,32] [--requests 400] [--checkpoint PATH] \
      [--cold_start] [--flags=--max_input_length=64,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ["sentence: the soup was cold", "sentence: a long flight home and a short night",
         "sentence: the band played all night and we loved every minute of it"]


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="builtin:tiny_t5")
    p.add_argument("--width", type=int, default=64, help="the model's embedding width")
    p.add_argument("--levels", default="1,8,32")
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--decode", type=int, default=8)
    p.add_argument("--max_wait_ms", type=float, default=5.0)
    p.add_argument("--cold_start", action="store_true",
                   help="first time start-up to ready over an empty, then warm, compile cache")
    p.add_argument("--flags", default="", help="more server flags, comma-separated")
    return p.parse_args()


def start_server(checkpoint: str, flags: list[str], env: dict | None = None
                 ) -> tuple[subprocess.Popen, str]:
    """`python -m prompt_tuning.serve` on a free port; returns once it is ready (warmed up):
    (the process, its base URL). `proc.started_s` / `proc.ready_s`: seconds from launch to its
    "serving ... on http://..." line (it accepts connections) and to its "ready" line."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "prompt_tuning.serve", f"--checkpoint={checkpoint}", "--port=0",
         *flags], cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    proc.started_s = time.perf_counter() - start
    ready = proc.stdout.readline() if " on http://" in line else ""
    proc.ready_s = time.perf_counter() - start
    if not ready.startswith("ready"):
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r} {ready!r}")
    return proc, line.split(" on ")[1].strip()


def _start(args, prompt_dir: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    flags = [f"--prompt=p{n}={prompt_dir}/p{n}.npy" for n in (5, 20, 100)]
    flags += [f for f in args.flags.split(",") if f]
    return start_server(args.checkpoint, [f"--max_wait_ms={args.max_wait_ms}", *flags], env)


def _cold_start(args, prompt_dir: str, cache: str) -> dict:
    """Start-up to ready over the empty compilation cache `cache`, then over it (now warm);
    returns the environment that starts over it."""
    env = {"PT_COMPILATION_CACHE_DIR": cache}
    for kind in ("cold", "warm"):
        proc, _ = _start(args, prompt_dir, env)
        proc.terminate()
        proc.wait(timeout=60)
        print(json.dumps({"start": kind, "to_serving_line_s": round(proc.started_s, 2),
                          "to_ready_s": round(proc.ready_s, 2), "checkpoint": args.checkpoint,
                          "flags": args.flags, "loadavg1": os.getloadavg()[0]}), flush=True)
    return env


def _body(i: int, decode: int) -> tuple[str, dict]:
    prompt = ["p5", "p20", "p100"][i % 3]
    text = TEXTS[(i // 3) % len(TEXTS)]
    if i % 2:
        return "/generate", {"prompt": prompt, "inputs": text, "max_decode_length": decode}
    return "/score", {"prompt": prompt, "inputs": text, "targets": "positive"}


async def _level(base: str, concurrency: int, total: int, decode: int) -> dict:
    import httpx

    latencies: list[float] = []
    next_index = 0

    async with httpx.AsyncClient(base_url=base, timeout=600,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        before = (await client.get("/health")).json()

        async def worker():
            nonlocal next_index
            while next_index < total:
                index = next_index
                next_index += 1
                path, body = _body(index, decode)
                start = time.perf_counter()
                response = await client.post(path, json=body)
                response.raise_for_status()
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        wall = time.perf_counter() - start
        after = (await client.get("/health")).json()
    ms = np.asarray(latencies) * 1000
    return {"concurrency": concurrency, "requests": total, "requests_per_s": round(total / wall, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p90_ms": round(float(np.percentile(ms, 90)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "batches": after["batches"] - before["batches"],
            "programs": [before["programs"], after["programs"]]}


def main() -> None:
    args = _parse()
    with tempfile.TemporaryDirectory() as prompt_dir, tempfile.TemporaryDirectory() as cache:
        rng = np.random.default_rng(0)
        for n in (5, 20, 100):
            np.save(f"{prompt_dir}/p{n}.npy",
                    rng.uniform(-0.5, 0.5, (n, args.width)).astype(np.float32))
        env = _cold_start(args, prompt_dir, cache) if args.cold_start else None
        proc, base = _start(args, prompt_dir, env)
        try:
            levels = [int(c) for c in args.levels.split(",")]
            # No untimed pass: the server compiled every batch shape before it said ready.
            for c in levels:
                result = asyncio.run(_level(base, c, args.requests, args.decode))
                result.update(checkpoint=args.checkpoint, decode=args.decode,
                              max_wait_ms=args.max_wait_ms, loadavg1=os.getloadavg()[0])
                print(json.dumps(result), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
