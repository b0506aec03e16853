"""Timing a benchmark step the way the peer benchmark does (first call, warm-up, timed calls,
each ending in `block_until_ready`), and what XLA says of the compiled program (FLOPs, memory)."""

from __future__ import annotations

import statistics
import time

from machine import loadavg1


def timing_summary(times: list[tuple[float, float]], batch: int, threads: int) -> dict:
    """times: (wall_s, process_cpu_s) per step; the same fields as the peer's."""
    wall = [w for w, _ in times]
    cpu = [c for _, c in times]
    med = statistics.median(wall)
    return {
        "steps_timed": len(wall),
        "step_ms_median": round(med * 1e3, 2),
        "step_ms_min": round(min(wall) * 1e3, 2),
        "step_ms_max": round(max(wall) * 1e3, 2),
        "steps_per_s": round(1.0 / med, 4),
        "examples_per_s": round(batch / med, 3),
        "steps_per_s_best": round(1.0 / min(wall), 4),
        "step_cpu_ms_median": round(statistics.median(cpu) * 1e3, 2),
        "cpu_util": round(sum(cpu) / (sum(wall) * threads), 3),
    }


def time_loop(fn, warmup: int, steps: int) -> list[tuple[float, float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return times


def add_rate(out: dict, peak_tflops: float | None = None) -> None:
    """The rate the median step achieved, from `step_gflop` (XLA's count, `analyses`), and its
    fraction of `peak_tflops` (model FLOPs utilization) if given."""
    if out.get("step_gflop") and out.get("step_ms_median"):
        out["gflops_per_s"] = round(out["step_gflop"] / (out["step_ms_median"] / 1e3), 1)
        if peak_tflops:
            out["mfu"] = round(out["gflops_per_s"] / (peak_tflops * 1e3), 4)


def measure(step, out: dict, args, tokens: bool = True) -> None:
    """Times `step` (first call, warm-up, timed steps) into `out`, with the load around it."""
    t0 = time.perf_counter()
    step()
    out["first_step_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    out["first_step_done_unix"] = time.time()  # the parent turns it into process_to_first_step_s
    out["loadavg1_before"] = loadavg1()
    times = time_loop(step, args.warmup, args.steps)
    out["loadavg1_after"] = loadavg1()
    out.update(timing_summary(times, args.batch, args.threads))
    if tokens:
        out["tokens_per_s"] = round((out["encoder_len"] + args.targets_len) * args.batch
                                    / statistics.median(w for w, _ in times), 1)


def tree_bytes(tree) -> int:
    import jax

    return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)))


def analyses(compiled) -> dict:
    """XLA's memory analysis (`xla_*_mib`) and FLOP count (`step_gflop`) of `compiled`.

    Call it before `host_memory.release()`: the analyses allocate about 90 MiB of host memory on
    the T5 1.1-small train step, which glibc would otherwise keep and add to the peak measured."""
    out = {}
    try:
        m = compiled.memory_analysis()
    except Exception:  # pragma: no cover - backend without memory analysis
        m = None
    if m is not None:
        out.update({f"xla_{k}_mib": round(getattr(m, f"{k}_size_in_bytes") / 2**20, 1)
                    for k in ("argument", "output", "temp") if hasattr(m, f"{k}_size_in_bytes")})
    flops = step_flops(compiled)
    if flops is not None:
        out["step_gflop"] = round(flops / 1e9, 2)
    return out


def step_flops(compiled) -> float | None:
    """XLA's count of floating-point operations in one call of `compiled`."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # pragma: no cover - backend without cost analysis
        return None
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None
