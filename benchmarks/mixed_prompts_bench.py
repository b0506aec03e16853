#!/usr/bin/env python3
"""Benchmark: one batch that mixes prompts against one prompt, and against one call per prompt.

Side by side in one process, on a T5 1.1-small-shaped model (random weights, fp32, CPU), for
the score step (summed target log-likelihood) and greedy generation (KV cache), all jitted:

  one_prompt     the batch of 8 with one prompt (`Prompt`, P=20): the baseline
  mixed_same     the same 8 examples, each with its own prompt of P=20 (`PaddedPromptTable`)
  mixed_lengths  each its own prompt, lengths 5..20 (padded to 32, masked)
  one_by_one     8 calls of batch 1, each with its own prompt (`Prompt`, P=20): what serving
                 many prompts costs without a mixed batch

Timing: each variant is compiled first (not timed), then the variants are timed in rounds,
interleaved (one call of each per round, `--rounds` rounds), so a busy machine slows all alike;
the medians and the ratio of throughputs to `one_prompt` are printed as one JSON line, with the
machine's fp32 matmul rate measured in the same run.

  python benchmarks/mixed_prompts_bench.py [--rounds 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from machine import limit_cpus, matmul_gflops  # noqa: E402


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--inputs_len", type=int, default=128)
    p.add_argument("--targets_len", type=int, default=8)
    p.add_argument("--prompt_len", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", default="small")
    return p.parse_args()


def main() -> None:
    args = _parse()
    limit_cpus(args.threads)
    import jax
    import numpy as np

    from prompt_tuning import decoding, runtime
    from prompt_tuning.model import init_params, t5_1_1
    from prompt_tuning.prompts import PaddedPromptTable, Prompt, PromptBank, seam

    config = t5_1_1(args.size)
    frozen = init_params(config, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    b, d = args.batch, config.emb_dim
    inputs = rng.integers(2, config.vocab_size, (b, args.inputs_len)).astype(np.int32)
    targets = rng.integers(2, config.vocab_size, (b, args.targets_len)).astype(np.int32)
    batch = {"encoder_input_tokens": inputs, "decoder_target_tokens": targets,
             "decoder_input_tokens": np.pad(targets[:, :-1], ((0, 0), (1, 0))),
             "decoder_loss_weights": np.ones_like(targets)}
    prompts = [rng.uniform(-0.5, 0.5, (args.prompt_len, d)).astype(np.float32) for _ in range(b)]
    ragged = [p[:n] for p, n in zip(prompts, np.linspace(5, args.prompt_len, b).astype(int))]

    def single(prompt):
        return (seam.prompted_model(config, Prompt(prompt.shape[0])),
                seam.with_prompt(frozen, prompt))

    def table(rows, length):
        bank = PromptBank(d)
        for i, row in enumerate(rows):
            bank.add(str(i), row)
        values, lengths = bank.table(length=length)
        return (seam.prompted_model(config, PaddedPromptTable(lengths, length)),
                seam.with_prompt(frozen, values), bank.ids([str(i) for i in range(b)]))

    greedy = decoding.DecodingConfig("greedy")

    def programs(model, params, ids=None, rows=slice(None)):
        part = {k: v[rows] for k, v in batch.items()}
        if ids is not None:
            part["prompt_ids"] = ids[rows]
        score = jax.jit(runtime.make_score_step(model))
        # EOS out of the vocabulary: every row decodes all targets_len tokens.
        gen = jax.jit(lambda p, t, i: decoding.generate(model, p, t, greedy, args.targets_len,
                                                        config.vocab_size + 1, i))
        return (lambda: score(params, part),
                lambda: gen(params, part["encoder_input_tokens"], part.get("prompt_ids")))

    variants = {"one_prompt": [programs(*single(prompts[0]))],
                "mixed_same": [programs(*table(prompts, args.prompt_len))],
                "mixed_lengths": [programs(*table(ragged, 32))],
                "one_by_one": [programs(*single(prompts[i]), rows=slice(i, i + 1))
                               for i in range(b)]}
    for calls in variants.values():  # compile (untimed)
        for score, gen in calls:
            jax.block_until_ready(score())
            jax.block_until_ready(gen())
    times = {(name, kind): [] for name in variants for kind in ("score", "generate")}
    for _ in range(args.rounds):
        for name, calls in variants.items():
            for kind, index in (("score", 0), ("generate", 1)):
                start = time.perf_counter()
                for call in calls:
                    jax.block_until_ready(call[index]())
                times[(name, kind)].append(time.perf_counter() - start)
    result = {"model": f"t5_1_1 {args.size} shape, random, fp32", "batch": b,
              "inputs_len": args.inputs_len, "targets_len": args.targets_len,
              "prompt_len": args.prompt_len, "rounds": args.rounds, "threads": args.threads,
              "matmul_gflops": round(matmul_gflops(n=1024, repeats=20), 1), "loadavg1": os.getloadavg()[0]}
    for kind in ("score", "generate"):
        base = statistics.median(times[("one_prompt", kind)])
        for name in variants:
            median = statistics.median(times[(name, kind)])
            result[f"{kind}_{name}_ms"] = round(1000 * median, 1)
            result[f"{kind}_{name}_throughput_vs_one_prompt"] = round(base / median, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
