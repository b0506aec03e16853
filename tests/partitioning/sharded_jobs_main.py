"""Run by test_sharded_jobs.py in a fresh process (the device count is fixed when JAX starts).

    XLA_FLAGS=--xla_force_host_platform_device_count=N \\
        python -m tests.partitioning.sharded_jobs_main NUM_PARTITIONS OUT_DIR PROMPT.npy

Runs the real eval, infer and score commands in this process on a mesh of NUM_PARTITIONS-way
model parallelism over all the devices, writing their outputs under OUT_DIR, and checks that the
frozen model they read is split as the rules say. Prints "ok <what>" per command.
"""

from __future__ import annotations

import json
import os
import sys

import jax
from jax.sharding import PartitionSpec as P

from prompt_tuning import cli, runtime
from prompt_tuning.model import t5_1_1
from prompt_tuning.partitioning import PartitioningConfig
from tests.launch import tiny_run


def _ok(module, *args):
    import importlib  # pylint: disable=import-outside-toplevel
    code = cli.call(importlib.import_module(module).main, [module, *args])
    assert code == 0, (module, code)


def main(num_partitions: int, out_dir: str, prompt: str) -> None:
    import gin  # pylint: disable=import-outside-toplevel

    placement = runtime.Placement.of(PartitioningConfig(num_partitions=num_partitions))
    frozen, _ = placement.load_frozen(runtime.ModelConfig("builtin:tiny_t5",
                                                          architecture=t5_1_1("tiny")))
    kernel = frozen.params["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
    assert kernel.sharding.spec == P(None, "model"), kernel.sharding
    assert len(kernel.sharding.device_set) == jax.device_count()
    print("ok placement", dict(placement.mesh.shape))

    partitions = f"--gin.NUM_PARTITIONS={num_partitions}"
    gin.clear_config(clear_constants=True)
    _ok("prompt_tuning.eval", *tiny_run.eval_flags(os.path.join(out_dir, "eval"),
                                                    f"--gin.PROMPT_FILE='{prompt}'", partitions))
    print("ok eval")
    gin.clear_config(clear_constants=True)
    _ok("prompt_tuning.infer", *tiny_run.infer_flags(
        os.path.join(out_dir, "infer.jsonl"), f"--gin.PROMPT_FILE='{prompt}'",
        "--gin.NUM_EXAMPLES=40", "--gin.INFER_BATCH_SIZE=16", "--gin.SPLIT='validation'",
        partitions))
    print("ok infer")
    inputs = os.path.join(out_dir, "score_in.jsonl")
    with open(inputs, "w") as f:
        for sentence, label in (("the soup was cold", "food"), ("a long flight", "travel"),
                                ("loud guitars all night", "music")):
            f.write(json.dumps({"inputs": f"sentence: {sentence}", "targets": label}) + "\n")
    _ok("prompt_tuning.score", "--checkpoint=builtin:tiny_t5", f"--inputs={inputs}",
        f"--output={os.path.join(out_dir, 'scores.jsonl')}", f"--prompt={prompt}",
        "--batch_size=8", f"--num_partitions={num_partitions}")
    print("ok score")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
