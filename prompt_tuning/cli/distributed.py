"""Several hosts, one run: starting JAX's multi-controller runtime, T5X's flags.

Every host runs the same command; JAX's distributed runtime joins them into one set of devices,
the mesh spans them all, each host reads its own shard of the data, and the first process writes
what is written once. The runtime starts:

* with `--coordinator_address=HOST:PORT --process_count=N --process_index=I` given on every host
  (any cluster, CPU or GPU; `--multiprocess_gpu` as in T5X);
* on its own where JAX can tell the cluster from the environment: SLURM, Open MPI, a TPU pod
  slice (one `jax.distributed.initialize()` with nothing given);
* not at all on a single host.
It must start before anything asks JAX for its devices, so the commands call `initialize` right
after parsing their flags.
"""

from __future__ import annotations

import os
from typing import Optional

from absl import flags

from prompt_tuning import errors


def define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_bool("multiprocess_gpu", False, "start JAX's distributed runtime for GPU hosts "
                      "(T5X's flag); with --coordinator_address etc., or detected from SLURM or "
                      "Open MPI.", flag_values=values)
    flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0, the same on every "
                        "host.", flag_values=values)
    flags.DEFINE_integer("process_count", None, "how many processes (hosts) the run has.",
                         flag_values=values)
    flags.DEFINE_integer("process_index", None, "this process's index, in [0, process_count).",
                         flag_values=values)


def _cluster_detected() -> Optional[str]:
    """The cluster JAX can start itself in, from the environment, if any."""
    def count(name: str) -> int:
        try:
            return int(os.environ.get(name, "1"))
        except ValueError:
            return 1

    if count("SLURM_NTASKS") > 1:
        return "SLURM"
    if count("OMPI_COMM_WORLD_SIZE") > 1:
        return "Open MPI"
    if len([h for h in os.environ.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]) > 1:
        return "a TPU pod slice"
    return None


def initialize(values: flags.FlagValues) -> None:
    """Starts the distributed runtime as the flags (or the environment) say; see module doc."""
    given = {"--coordinator_address": values.coordinator_address,
             "--process_count": values.process_count, "--process_index": values.process_index}
    explicit = {name: value for name, value in given.items() if value is not None}
    if explicit and len(explicit) != len(given):
        missing = sorted(set(given) - set(explicit))
        raise errors.UsageError(f"{', '.join(missing)} missing: a multi-host run needs "
                                "--coordinator_address, --process_count and --process_index on "
                                "every host.")
    if explicit:
        count, index = values.process_count, values.process_index
        if count < 1 or not 0 <= index < count:
            raise errors.UsageError(f"--process_index {index} must be in [0, --process_count "
                                    f"{count}).")
        if ":" not in values.coordinator_address:
            raise errors.UsageError(f"--coordinator_address must be HOST:PORT, got "
                                    f"{values.coordinator_address!r}.")
        _start(coordinator_address=values.coordinator_address, num_processes=count,
               process_id=index)
    elif values.multiprocess_gpu or _cluster_detected():
        _start()


def _start(**kwargs) -> None:
    import jax  # pylint: disable=import-outside-toplevel

    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as e:
        where = kwargs.get("coordinator_address") or _cluster_detected() or "the environment"
        raise errors.UserError(f"JAX's distributed runtime did not start ({where}): "
                               f"{str(e).strip().splitlines()[0]}") from e
