"""Will it fit? The real train step, compiled for the requested mesh from shapes alone.

`train --dry_run` builds the model, the prompt, the optimizer state and a batch as abstract
arrays (`jax.ShapeDtypeStruct`s on their shardings: no checkpoint or data is read, nothing is
written), lowers and compiles the same jitted step training runs, and reports what one device
holds: its shard of the frozen parameters, the trainable part and its optimizer state, its slice
of the batch, and XLA's temporaries. On a CPU host,
`XLA_FLAGS=--xla_force_host_platform_device_count=N` stands in for N chips; CPU's XLA does no
automatic rematerialisation and computes bfloat16 in float32, so its temporaries are an upper
bound for a TPU's or GPU's.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Optional

import jax
import jax.numpy as jnp

from prompt_tuning import errors, partitioning
from prompt_tuning.data.pipeline import FEATURES
from prompt_tuning.model import params as params_lib
from prompt_tuning.prompts import seam
from prompt_tuning.training import optim, step as step_lib, trainable
from prompt_tuning.training.config import TrainConfig

GIB = 1024 ** 3


@dataclasses.dataclass(frozen=True)
class MemoryReport:
    """Bytes one device holds while the train step runs."""

    mesh: dict[str, int]
    backend: str
    params: int
    trainable: int
    optimizer: int
    batch: int
    temporaries: int
    peak: int
    device_memory: Optional[int]
    compile_seconds: float

    @property
    def fits(self) -> Optional[bool]:
        return None if self.device_memory is None else self.peak <= self.device_memory

    def lines(self) -> list[str]:
        out = [f"mesh {self.mesh} on {self.backend}, compiled in {self.compile_seconds:.1f} s; "
               "per device:",
               f"  frozen parameters    {_size(self.params)}",
               f"  trained parameters   {_size(self.trainable)}",
               f"  optimizer state      {_size(self.optimizer)}",
               f"  batch                {_size(self.batch)}",
               f"  temporaries (XLA)    {_size(self.temporaries)}",
               f"  peak                 {_size(self.peak)}"]
        if self.backend == "cpu":
            out.append("note: CPU's XLA does not rematerialise on its own: on TPU and GPU the "
                       "temporaries are at most this.")
        out.append(f"dry run: {self.verdict()}")
        return out

    def verdict(self) -> str:
        """`fits|does not fit: peak X GiB per device of Y GiB (params A, ...)`."""
        parts = (f"params {self.params / GIB:.1f}, optimizer {self.optimizer / GIB:.2f}, "
                 f"temporaries {self.temporaries / GIB:.1f}")
        if self.device_memory is None:
            return (f"peak {self.peak / GIB:.1f} GiB per device ({parts}); the device's memory "
                    "is unknown (--device_memory_gib)")
        return (f"{'fits' if self.fits else 'does not fit'}: peak {self.peak / GIB:.1f} GiB per "
                f"device of {self.device_memory / GIB:.1f} GiB ({parts})")


def _size(n: int) -> str:
    for unit, size in (("GiB", GIB), ("MiB", 2 ** 20)):
        if n >= size / 10:
            return f"{n / size:.2f} {unit}"
    return f"{n / 1024:.2f} KiB"


def _per_device(tree: Any) -> int:
    """Bytes of one device's shard of every leaf (ShapeDtypeStructs with shardings)."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        shape = leaf.sharding.shard_shape(leaf.shape)
        total += math.prod(shape) * jnp.dtype(leaf.dtype).itemsize
    return total


def _on(tree: Any, shardings: Any) -> Any:
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        tree, shardings)


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


def dry_run(config: TrainConfig, device_memory_gib: Optional[float] = None) -> MemoryReport:
    """Compiles the train step of `config` on its mesh from shapes only; see module doc."""
    import time  # pylint: disable=import-outside-toplevel

    if config.model.architecture is None:
        raise errors.UsageError("the dry run reads no checkpoint, so it needs the model's size "
                                "from a size file (e.g. models/t5_1_1_xxl_prompt.gin).")
    memory = device_memory(device_memory_gib)
    model_config = config.model.runtime_config(config.model.architecture)
    placement = config.partitioning
    mesh, rules = placement.mesh(), placement.rules()
    partitioning.check_batch_size(config.train_dataset.batch_size, mesh)
    net = seam.prompted_model(model_config, config.prompt.combiner())
    shapes = params_lib.abstract_params(net)
    shardings = partitioning.param_shardings(net, mesh, rules)
    paths = trainable.trainable_paths(shapes, config.prompt.trainable)
    trained, frozen = trainable.split(_on(shapes, shardings), paths)
    frozen_shardings = partitioning.frozen_shardings(shardings, paths)
    tx = optim.adafactor(config.optimizer)
    state = jax.eval_shape(lambda p: step_lib.TrainState.create(p, tx), trained)
    state_shardings = partitioning.state_shardings(state, mesh)
    state = _on(state, state_shardings)
    lengths = config.train_dataset.task_feature_lengths
    batch_sharding = partitioning.batch_sharding(mesh)
    size = config.train_dataset.batch_size
    batch = {name: jax.ShapeDtypeStruct(
        (size, lengths["inputs" if name == "encoder_input_tokens" else "targets"]), jnp.int32,
        sharding=batch_sharding) for name in FEATURES}
    rng = jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=partitioning.replicated(mesh))
    train_step = partitioning.jit_train_step(
        step_lib.make_train_step(net, tx, config.loss, config.num_microbatches), mesh,
        state_shardings, frozen_shardings, batch_sharding, rules)
    started = time.perf_counter()
    compiled = train_step.lower(state, frozen, batch, rng).compile()
    seconds = time.perf_counter() - started
    analysis = compiled.memory_analysis()
    temporaries = int(analysis.temp_size_in_bytes)
    peak = int(analysis.argument_size_in_bytes + analysis.output_size_in_bytes
               - analysis.alias_size_in_bytes + temporaries)
    return MemoryReport(mesh=dict(mesh.shape), backend=jax.default_backend(),
                        params=_per_device(frozen), trainable=_per_device(state.params),
                        optimizer=_per_device(state.opt_state), batch=_per_device(batch),
                        temporaries=temporaries, peak=peak, device_memory=memory,
                        compile_seconds=seconds)
