#!/usr/bin/env python3
"""Benchmark: our JAX/Flax prompt tuning on a T5 1.1-shaped model, CPU.

The counterpart of the peer benchmark `../shared/bench/peft_prompt_bench.py` (Hugging Face PEFT):
same model shape, batch, modes, timing method and JSON fields where they exist, so both can be run
side by side (see benchmarks/README.md).

Modes (each runs in its own child process, so peak RSS is per mode):
  prompt_train    `training.step.make_train_step` under `jax.jit` (state donated, as the training loop
                  does): frozen tree passed as a constant, gradients w.r.t. the prompt only, Adafactor
                  with the paper's settings (`optim.AdafactorConfig()`: lr 0.3, decay 0.8, wd 1e-5,
                  clipping 1.0, no parameter scaling, unfactored). Dropout `--dropout` (0.1) is on.
  full_train      no prompt; every parameter in the trainable dict ("model tuning"); the same
                  Adafactor at lr 1e-3 (factored by default, as T5X and transformers' Adafactor do for
                  matrices; `--no-full_factored` for the unfactored prompt settings).
  prompt_infer    `make_score_step` (summed target log-likelihood per example) with the prompt.
  base_infer      the same without a prompt (shows the prompt's cost).
  prompt_generate `decoding.generate` (greedy, with the key/value cache, as eval and infer run
                  it), exactly `--targets_len` tokens (EOS id set out of the vocabulary so no row
                  stops early, like the peer's min_new_tokens); `--no-kv_cache` recomputes the
                  decoder over the whole buffer at each step instead.
  matmul_rate     XLA's rate on one 2048^3 matmul, fp32 and bf16 inputs with fp32 accumulation
                  (`preferred_element_type`), median of 10: what each step's `gflops_per_s` is
                  measured against (`matmul_fraction`).

Model: `t5_1_1("small")` shape by default (d_model 512, d_ff 1024, 8+8 layers, 6 heads, d_kv 64,
vocab 32128, untied logits), random weights made on the host and put on the device as a
checkpoint is read (`host_random_params`); nothing is downloaded. `--activation_dtype` float32 (default) or bfloat16: with
bfloat16 every matmul takes bf16 inputs and accumulates in fp32, norms, softmax, logits and the
loss stay fp32, the prompt and its optimizer state stay fp32, and the frozen kernels are kept in
bf16 (`model.compute_params`, as the training loop keeps them). full_train keeps every
parameter fp32 (it trains them).

FLOPs: XLA's cost analysis of the compiled step (`step_gflop`); `gflops_per_s` = that / median.

Data: one fixed synthetic batch (random ids in [2, vocab), no padding) reused every step.

Timing: compile (trace + lower + XLA compile) is measured once and reported as `compile_s`; then
`--warmup` untimed steps and `--steps` timed steps, each ending in `jax.block_until_ready` (train
steps also read the loss as a Python float, as the training loop does). Reported as in the peer:
step_ms_median/min/max, steps_per_s (1 / median), examples_per_s, steps_per_s_best (1 / min),
step_cpu_ms_median, cpu_util (process CPU time / (wall * threads)), loadavg1_before/after,
peak_rss_mib, rss_after_build_mib, trainable_params; plus opt_state_bytes (train modes) and XLA's
memory analysis of the compiled step.

Threads: `--threads N` (default 2) pins each child to N CPUs with sched_setaffinity before JAX starts
(XLA's CPU thread pool is sized from the CPUs the process may use). On a 2-core machine, 2 is all of it.

Shared machines: as for the peer, a busy machine inflates medians; trust runs with cpu_util >= 0.95
or look at step_ms_min.

Example:
  python benchmarks/prompt_bench.py                                     # t5-v1_1-small shape
  python benchmarks/prompt_bench.py --d_model 64 --d_ff 128 --layers 2 --heads 2 --d_kv 32 \\
      --vocab 256 --inputs_len 16 --steps 3 --warmup 1                  # smoke, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from machine import current_rss_mib, limit_cpus, matmul_rates, peak_rss_mib
from timing import add_rate, analyses, measure, tree_bytes

ALL_MODES = ["prompt_train", "full_train", "prompt_infer", "base_infer", "prompt_generate",
             "matmul_rate"]
DTYPES = ("float32", "bfloat16")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # model shape (defaults: t5-v1_1-small)
    p.add_argument("--d_model", type=int, default=512)
    p.add_argument("--d_ff", type=int, default=1024)
    p.add_argument("--layers", type=int, default=8, help="encoder layers = decoder layers")
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--d_kv", type=int, default=64)
    p.add_argument("--vocab", type=int, default=32128)
    p.add_argument("--dropout", type=float, default=0.1, help="dropout_rate used in train modes")
    p.add_argument("--activation_dtype", default="float32", choices=DTYPES,
                   help="ACTIVATION_DTYPE: bfloat16 = bf16 matmul inputs, fp32 accumulation")
    p.add_argument("--compilation_cache", action=argparse.BooleanOptionalAction, default=True,
                   help="JAX's persistent compilation cache, as every command has it "
                        "(cli.compilation_cache: $PT_COMPILATION_CACHE_DIR or ~/.cache)")
    p.add_argument("--kv_cache", action=argparse.BooleanOptionalAction, default=True,
                   help="prompt_generate with the key/value cache (as the library generates)")
    # batch shape
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--inputs_len", type=int, default=128, help="encoder tokens, before the prompt")
    p.add_argument("--targets_len", type=int, default=8)
    p.add_argument("--prompt_len", type=int, default=20)
    # optimizer
    p.add_argument("--lr", type=float, default=None, help="default: 0.3 prompt / 1e-3 full")
    p.add_argument("--full_factored", action=argparse.BooleanOptionalAction, default=True,
                   help="factored second moments in full_train (prompt_train is always unfactored)")
    # timing
    p.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per mode (after compile)")
    p.add_argument("--threads", type=int, default=2, help="CPUs each child may use (sched_setaffinity)")
    p.add_argument("--peak_tflops", type=float, default=None,
                   help="the accelerator's peak rate in the activation dtype (e.g. H200 bf16 "
                        "dense: 989); adds mfu = achieved rate / peak (XLA's FLOP count per call)")
    p.add_argument("--modes", default=",".join(ALL_MODES), help=f"comma list from {ALL_MODES}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json_out", default=None)
    p.add_argument("--in_process", action="store_true", help="run modes in this process (peak RSS then cumulative)")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    bad = [m for m in args.modes.split(",") if m not in ALL_MODES]
    if bad:
        p.error(f"unknown mode(s) {bad}; choose from {ALL_MODES}")
    return args


# --------------------------------------------------------------------------------------------- model and data


def t5_config(args, dropout: float):
    from prompt_tuning.model import t5_1_1

    return t5_1_1("small", vocab_size=args.vocab, emb_dim=args.d_model, mlp_dim=args.d_ff,
                  num_encoder_layers=args.layers, num_decoder_layers=args.layers,
                  num_heads=args.heads, head_dim=args.d_kv, dropout_rate=dropout,
                  dtype=args.activation_dtype)


def host_random_params(model, seed: int):
    """Random parameters made on the host and put on the device, as a checkpoint is read: the
    shapes from `abstract_params` (nothing allocated), then one numpy array per leaf (scales 1,
    kernels N(0, 1/fan_in), query kernels also / sqrt(head_dim) as T5X initialises them,
    embeddings N(0, 1)). Cheaper in time and memory than running the
    initialisers, eagerly (hundreds of small programs) or jitted (one large compile)."""
    import jax
    from flax import traverse_util

    from prompt_tuning.model import abstract_params

    rng = np.random.default_rng(seed)
    flat = traverse_util.flatten_dict(abstract_params(model))
    for path, leaf in flat.items():
        if path[-1] == "scale":
            value = np.ones(leaf.shape, np.float32)
        else:
            value = rng.standard_normal(leaf.shape, dtype=np.float32)
            if path[-1] == "kernel":
                value *= np.float32(leaf.shape[-2] ** -0.5)
                if "query" in path:  # T5 folds attention's 1/sqrt(head_dim) into the query init
                    value *= np.float32(model.config.head_dim ** -0.5)
        flat[path] = jax.device_put(value.astype(leaf.dtype, copy=False))
    return traverse_util.unflatten_dict(flat)


def make_batch(args) -> dict:
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(args.seed + 1)
    # ids 2.. avoid pad (0) and EOS (1)
    inputs = rng.integers(2, args.vocab, (args.batch, args.inputs_len))
    targets = rng.integers(2, args.vocab, (args.batch, args.targets_len))
    decoder_inputs = np.concatenate([np.zeros((args.batch, 1), np.int64), targets[:, :-1]], axis=1)
    batch = dict(encoder_input_tokens=inputs, decoder_input_tokens=decoder_inputs,
                 decoder_target_tokens=targets, decoder_loss_weights=np.ones_like(targets))
    return {k: jnp.asarray(v, jnp.int32) for k, v in batch.items()}


# --------------------------------------------------------------------------------------------- modes


def analyses_then_release(compiled) -> dict:
    """XLA's analyses of `compiled` (`timing.analyses`), then what compiling (and the analyses:
    they allocate too) freed goes back to the OS, as the training loop releases it."""
    from prompt_tuning.runtime import host_memory

    out = analyses(compiled)
    host_memory.release()
    return out


def run_mode(mode: str, args) -> dict:
    import jax

    from prompt_tuning.model import Transformer, compute_params, param_count
    from prompt_tuning.prompts import Prompt
    from prompt_tuning import runtime
    from prompt_tuning.training import optim, step as step_lib, trainable

    out: dict = {"mode": mode, "cpus": sorted(os.sched_getaffinity(0))}
    if mode == "matmul_rate":
        out.update(matmul_rates())
        out["peak_rss_mib"] = round(peak_rss_mib(), 1)
        return out
    train = mode in ("prompt_train", "full_train")
    prompt = mode.startswith("prompt")
    t_build = time.perf_counter()
    config = t5_config(args, args.dropout if train else 0.0)
    out["activation_dtype"] = args.activation_dtype
    model = Transformer(config, prompt=Prompt(args.prompt_len) if prompt else None)
    params = jax.block_until_ready(host_random_params(model, args.seed))
    total = param_count(params)
    out["base_model_params"] = total - (args.prompt_len * args.d_model if prompt else 0)
    out["total_params"] = total
    out["encoder_len"] = args.inputs_len + (args.prompt_len if prompt else 0)
    out["decoder_len"] = args.targets_len
    if prompt:
        out["prompt_table_shape"] = list(params["prompt"]["prompt"].shape)
    batch = make_batch(args)
    out["build_s"] = round(time.perf_counter() - t_build, 2)
    out["rss_after_build_mib"] = round(current_rss_mib(), 1)

    if prompt:  # the frozen model as every job keeps it (16-bit kernels under bfloat16)
        params = compute_params(params, config)
    out["param_bytes"] = tree_bytes(params)
    if train:
        if prompt:
            trained, frozen = trainable.split(params, trainable.trainable_paths(params))
            opt_config = optim.AdafactorConfig(learning_rate=args.lr if args.lr is not None else 0.3)
        else:
            trained, frozen = trainable.flatten(params), {}
            opt_config = optim.AdafactorConfig(learning_rate=args.lr if args.lr is not None else 1e-3,
                                               factored=args.full_factored)
        del params
        optimizer = optim.adafactor(opt_config)
        out["optimizer"] = {"name": "optax.adafactor via prompt_tuning.training.optim",
                            **{k: getattr(opt_config, k) for k in (
                                "learning_rate", "decay_rate", "weight_decay_rate",
                                "clipping_threshold", "multiply_by_parameter_scale", "factored")}}
        state = step_lib.TrainState.create(trained, optimizer)
        out["trainable_params"] = param_count(state.params)
        out["trainable_paths"] = len(state.params) if prompt else f"all {len(state.params)}"
        out["opt_state_bytes"] = tree_bytes(state.opt_state)
        out["opt_state_arrays_gt1"] = sum(1 for x in jax.tree.leaves(state.opt_state) if x.size > 1)
        dropout_root = jax.random.PRNGKey(args.seed + 2)
        jitted = jax.jit(step_lib.make_train_step(model, optimizer), donate_argnums=(0,))
        out["rss_before_compile_mib"] = round(current_rss_mib(), 1)
        t0 = time.perf_counter()
        # As the training loop does: the step's rng from a Python step number (so the eager
        # fold_in is compiled once, here, before the compiler's memory is released).
        compiled = jitted.lower(state, frozen, batch, jax.random.fold_in(dropout_root, 1)).compile()
        out["compile_s"] = round(time.perf_counter() - t0, 2)
        out.update(analyses_then_release(compiled))
        out["peak_rss_after_compile_mib"] = round(peak_rss_mib(), 1)
        losses = []
        holder = {"state": state, "step": 1}
        del state, trained

        def step():
            s = holder["state"]
            s, metrics = compiled(s, frozen, batch, jax.random.fold_in(dropout_root, holder["step"]))
            jax.block_until_ready(s)
            # Per token, like the peer's mean; divided on the host, as the loop reads its loss.
            losses.append(float(metrics["loss"]) / float(metrics["num_tokens"]))
            holder["state"], holder["step"] = s, holder["step"] + 1

        measure(step, out, args)
        add_rate(out, args.peak_tflops)
        out["loss_first"] = round(losses[0], 4)
        out["loss_last"] = round(losses[-1], 4)
        out["loss_is_per_token"] = True
    elif mode in ("prompt_infer", "base_infer"):
        out["trainable_params"] = args.prompt_len * args.d_model if prompt else total
        jitted = jax.jit(runtime.make_score_step(model))
        t0 = time.perf_counter()
        compiled = jitted.lower(params, batch).compile()
        out["compile_s"] = round(time.perf_counter() - t0, 2)
        out.update(analyses_then_release(compiled))

        def step():
            jax.block_until_ready(compiled(params, batch))

        measure(step, out, args)
        add_rate(out, args.peak_tflops)
    elif mode == "prompt_generate":
        from prompt_tuning import decoding

        out["trainable_params"] = args.prompt_len * args.d_model
        # An EOS id outside the vocabulary is never the argmax: every row decodes targets_len tokens.
        never_eos = args.vocab

        def generate(p, tokens):
            return decoding.generate(model, p, tokens, decoding.DecodingConfig(), args.targets_len,
                                     never_eos, cached=args.kv_cache)

        t0 = time.perf_counter()
        compiled = jax.jit(generate).lower(params, batch["encoder_input_tokens"]).compile()
        out["compile_s"] = round(time.perf_counter() - t0, 2)
        out.update(analyses_then_release(compiled))
        shapes = []

        def step():
            res = jax.block_until_ready(compiled(params, batch["encoder_input_tokens"]))
            shapes.append(list(res.shape))

        measure(step, out, args, tokens=False)
        add_rate(out, args.peak_tflops)
        out["generated_shape"] = shapes[-1]
        out["kv_cache"] = args.kv_cache
    else:
        raise ValueError(mode)

    out["peak_rss_mib"] = round(peak_rss_mib(), 1)
    return out


# --------------------------------------------------------------------------------------------- driver


def versions() -> dict:
    import flax
    import jax
    import jaxlib
    import optax

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    if args._child or args.in_process:
        if args.compilation_cache:
            from prompt_tuning.cli import compilation_cache

            compilation_cache.enable()
    if args._child:
        limit_cpus(args.threads)
        print("__RESULT__" + json.dumps(run_mode(args._child, args)), flush=True)
        return

    modes = args.modes.split(",")
    results: dict = {}
    if args.in_process:
        limit_cpus(args.threads)
    for mode in modes:
        t0 = time.perf_counter()
        if args.in_process:
            r = run_mode(mode, args)
        else:
            child_argv = list(argv if argv is not None else sys.argv[1:])
            cmd = [sys.executable, os.path.abspath(__file__), *child_argv, "--_child", mode]
            started = time.time()
            cp = subprocess.run(cmd, capture_output=True, text=True)
            lines = [l for l in cp.stdout.splitlines() if l.startswith("__RESULT__")]
            if cp.returncode != 0 or not lines:
                r = {"mode": mode, "error": (cp.stderr or cp.stdout)[-2000:], "returncode": cp.returncode}
            else:
                r = json.loads(lines[-1][len("__RESULT__"):])
                if "first_step_done_unix" in r:  # start-up as a user sees it: imports included
                    r["process_to_first_step_s"] = round(r.pop("first_step_done_unix") - started, 2)
        r["mode_wall_s"] = round(time.perf_counter() - t0, 1)
        results[mode] = r
        print(f"[prompt_bench] {mode}: done in {r['mode_wall_s']} s", file=sys.stderr, flush=True)

    record = {
        "bench": "prompt_tuning_jax_t5",
        "versions": versions(),
        "config": {k: v for k, v in vars(args).items() if not k.startswith("_")},
        "results": results,
    }
    line = json.dumps(record)
    print(line)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    # Make `prompt_tuning` importable when run as a script from a checkout.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
