#!/usr/bin/env python3
"""Benchmark: greedy generation with the key/value cache against recomputing the decoder.

Both ways run in this one process on the same model, prompt and batch, one after the other per
length, so their ratio is measured side by side. Every row decodes exactly `length` tokens (the
EOS id is set outside the vocabulary, like the peer benchmark's min_new_tokens). Prints one JSON
object: per length, compile seconds, median/min seconds per call and generated tokens per
second (batch * length / median) of each way, and the cached/recomputed speed-up.

  python benchmarks/decode_bench.py --lengths 8,64            # T5 1.1-small shape, batch 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="small", help="a T5 1.1 size (random weights)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--inputs_len", type=int, default=128)
    p.add_argument("--prompt_len", type=int, default=20)
    p.add_argument("--lengths", default="8,64", help="comma list of generated lengths")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per way and length")
    return p.parse_args()


def main() -> None:
    args = _parse()
    import jax  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel

    from prompt_tuning import decoding  # pylint: disable=import-outside-toplevel
    from prompt_tuning.model import init_params, t5_1_1  # pylint: disable=import-outside-toplevel
    from prompt_tuning.prompts import Prompt, seam  # pylint: disable=import-outside-toplevel

    config = t5_1_1(args.size)
    model = seam.prompted_model(config, Prompt(args.prompt_len))
    params = seam.with_prompt(init_params(config, jax.random.PRNGKey(0)),
                              np.random.default_rng(0).uniform(
                                  -0.5, 0.5, (args.prompt_len, config.emb_dim)))
    inputs = jax.numpy.asarray(np.random.default_rng(1).integers(
        2, config.vocab_size, (args.batch, args.inputs_len)), jax.numpy.int32)
    never = config.vocab_size  # an EOS id no logit has: every row decodes every position
    results = {"size": args.size, "batch": args.batch,
               "inputs": f"{args.inputs_len} + prompt {args.prompt_len}",
               "devices": jax.local_device_count(), "backend": jax.default_backend(),
               "lengths": {}}
    for length in (int(n) for n in args.lengths.split(",")):
        row = {}
        for name, cached in (("cached", True), ("recomputed", False)):
            fn = jax.jit(lambda p, x, cached=cached, length=length: decoding.generate(
                model, p, x, decoding.DecodingConfig(), length, never, cached=cached))
            started = time.perf_counter()
            jax.block_until_ready(fn(params, inputs))
            compile_s = time.perf_counter() - started
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                jax.block_until_ready(fn(params, inputs))
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            row[name] = {"compile_s": round(compile_s, 2), "median_s": round(median, 4),
                         "min_s": round(min(times), 4),
                         "tokens_per_s": round(args.batch * length / median, 1)}
        row["speedup"] = round(row["recomputed"]["median_s"] / row["cached"]["median_s"], 2)
        results["lengths"][length] = row
        print(f"[decode_bench] length {length}: cached {row['cached']['tokens_per_s']} tok/s, "
              f"recomputed {row['recomputed']['tokens_per_s']} tok/s, x{row['speedup']}",
              flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
