"""Will it fit? Programs compiled for a mesh from shapes alone, and what one device holds.

A dry run builds every input as a `jax.ShapeDtypeStruct` on its sharding (no checkpoint or data
is read, nothing is written), lowers and compiles the same jitted programs a job runs, and reads
XLA's memory analysis. On a CPU host, `XLA_FLAGS=--xla_force_host_platform_device_count=N`
stands in for N chips; CPU's XLA does no automatic rematerialisation and computes bfloat16 in
float32, so its temporaries are an upper bound for a TPU's or GPU's.

    report = DryRunReport(mesh, [program_memory("train step", jitted, args, parts)], memory)
    print("\\n".join(report.lines()))   # ends with "dry run: fits: peak ..."
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp

from prompt_tuning import errors, partitioning
from prompt_tuning.model import params as params_lib
from prompt_tuning.prompts import PromptConfig, seam
from prompt_tuning.runtime.frozen_model import ModelConfig

GIB = 1024 ** 3
PyTree = Any


@dataclasses.dataclass(frozen=True)
class ProgramMemory:
    """Bytes one device holds while one compiled program runs.

    `parts` are its inputs by kind ("frozen parameters", "batch", ...); `peak` is arguments plus
    outputs (less what they share) plus XLA's temporaries.
    """

    name: str
    parts: Mapping[str, int]
    temporaries: int
    peak: int
    compile_seconds: float


@dataclasses.dataclass(frozen=True)
class DryRunReport:
    """Every program of a job, against one device's memory (None: unknown)."""

    mesh: Mapping[str, int]
    programs: Sequence[ProgramMemory]
    device_memory: Optional[int]
    backend: str = dataclasses.field(default_factory=jax.default_backend)

    @property
    def worst(self) -> ProgramMemory:
        return max(self.programs, key=lambda p: p.peak)

    @property
    def fits(self) -> Optional[bool]:
        return None if self.device_memory is None else self.worst.peak <= self.device_memory

    def lines(self) -> list[str]:
        out = [f"mesh {dict(self.mesh)} on {self.backend}; per device:"]
        for program in self.programs:
            out.append(f"{program.name} (compiled in {program.compile_seconds:.1f} s):")
            for name, size in program.parts.items():
                out.append(f"  {name:<20} {_size(size)}")
            out.append(f"  {'temporaries (XLA)':<20} {_size(program.temporaries)}")
            out.append(f"  {'peak':<20} {_size(program.peak)}")
        if self.backend == "cpu":
            out.append("note: CPU's XLA does not rematerialise on its own and computes bfloat16 "
                       "in float32: on TPU and GPU the temporaries are at most this.")
        out.append(f"dry run: {self.verdict()}")
        return out

    def verdict(self) -> str:
        """`fits|does not fit: peak X GiB per device of Y GiB (params A, optimizer B, ...)`,
        for the program with the highest peak."""
        worst = self.worst
        params = sum(v for k, v in worst.parts.items() if "parameters" in k)
        parts = (f"params {params / GIB:.1f}, optimizer "
                 f"{worst.parts.get('optimizer state', 0) / GIB:.2f}, temporaries "
                 f"{worst.temporaries / GIB:.1f}")
        where = f"; {worst.name}" if len(self.programs) > 1 else ""
        if self.device_memory is None:
            return (f"peak {worst.peak / GIB:.1f} GiB per device ({parts}{where}); the device's "
                    "memory is unknown (--device_memory_gib)")
        return (f"{'fits' if self.fits else 'does not fit'}: peak {worst.peak / GIB:.1f} GiB "
                f"per device of {self.device_memory / GIB:.1f} GiB ({parts}{where})")


def _size(n: int) -> str:
    for unit, size in (("GiB", GIB), ("MiB", 2 ** 20)):
        if n >= size / 10:
            return f"{n / size:.2f} {unit}"
    return f"{n / 1024:.2f} KiB"


def per_device(tree: PyTree) -> int:
    """Bytes of one device's shard of every leaf (ShapeDtypeStructs with shardings)."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        shape = leaf.sharding.shard_shape(leaf.shape)
        total += math.prod(shape) * jnp.dtype(leaf.dtype).itemsize
    return total


def on(tree: PyTree, shardings: PyTree) -> PyTree:
    """Abstract arrays of `tree`'s shapes and dtypes, placed on `shardings`."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        tree, shardings)


def program_memory(name: str, jitted: Any, args: Sequence[Any], parts: Mapping[str, int]
                   ) -> ProgramMemory:
    """Compiles `jitted` (a jitted or `MeshFunction`) for abstract `args`; its memory."""
    started = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    seconds = time.perf_counter() - started
    analysis = compiled.memory_analysis()
    temporaries = int(analysis.temp_size_in_bytes)
    peak = int(analysis.argument_size_in_bytes + analysis.output_size_in_bytes
               - analysis.alias_size_in_bytes + temporaries)
    return ProgramMemory(name, dict(parts), temporaries, peak, seconds)


def device_memory(override_gib: Optional[float]) -> Optional[int]:
    """Bytes of one device: the flag's, the accelerator's own, or RAM over CPU devices."""
    if override_gib is not None:
        if not override_gib > 0:
            raise errors.UsageError(f"--device_memory_gib must be positive, got {override_gib}.")
        return int(override_gib * GIB)
    device = jax.local_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    if device.platform == "cpu":
        try:
            ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            return None
        return ram // jax.local_device_count()
    return None


@dataclasses.dataclass(frozen=True)
class AbstractModel:
    """A prompted model's parameters as abstract arrays on their shardings."""

    net: Any
    params: PyTree
    shardings: PyTree


def abstract_model(model: ModelConfig, prompt: PromptConfig,
                   placement: "Any") -> AbstractModel:
    """The prompted model of `model` and `prompt`, its parameters abstract on `placement`'s
    mesh (the prompt replicated, as in every job), the kernels in the activation dtype as every
    job keeps them (`compute_params`)."""
    if model.architecture is None:
        raise errors.UsageError("the dry run reads no checkpoint, so it needs the model's size "
                                "from a size file (e.g. models/t5_1_1_xxl_prompt.gin).")
    net = seam.prompted_model(model.runtime_config(model.architecture), prompt.combiner())
    shardings = partitioning.param_shardings(net, placement.mesh, placement.rules)
    params = on(params_lib.abstract_params(net), shardings)
    return AbstractModel(net, params_lib.compute_params(params, net.config), shardings)


def abstract_batch(sizes: Mapping[str, tuple[int, ...]], sharding: Any) -> dict[str, Any]:
    """`{feature: int32 [batch, length]}` abstract arrays on `sharding`."""
    return {name: jax.ShapeDtypeStruct(shape, jnp.int32, sharding=sharding)
            for name, shape in sizes.items()}
