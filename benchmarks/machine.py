"""The machine a benchmark runs on: which CPUs it may use, its memory, its load, and XLA's
matmul rate on it (the figure every step's rate is compared with, measured in the same run)."""

from __future__ import annotations

import os
import resource
import statistics
import time


def limit_cpus(threads: int) -> list[int]:
    """Pins this process to `threads` CPUs (if it may use more). Must run before JAX starts:
    XLA sizes its CPU thread pool from the CPUs the process may use."""
    cpus = sorted(os.sched_getaffinity(0))
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])
    return sorted(os.sched_getaffinity(0))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def loadavg1() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def matmul_gflops(dtype: str = "float32", n: int = 2048, repeats: int = 10) -> float:
    """XLA's GFLOP/s on one n^3 matmul with `dtype` inputs accumulated in float32 (median of
    `repeats` calls after one compile)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), dtype)
    f = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
    f(a, a).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, a).block_until_ready()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def matmul_rates() -> dict:
    """`matmul_fp32_gflops` and `matmul_bf16_in_fp32_acc_gflops` (2048^3, median of 10)."""
    return {"matmul_fp32_gflops": round(matmul_gflops("float32"), 1),
            "matmul_bf16_in_fp32_acc_gflops": round(matmul_gflops("bfloat16"), 1)}
