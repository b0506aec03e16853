r"""Decodes a split with a prompt and writes JSONL predictions, T5X style.

  python -m prompt_tuning.infer \
    --gin_file=models/t5_1_1_base_prompt.gin --gin_file=runs/prompt_infer.gin \
    --gin.INITIAL_CHECKPOINT_PATH="'/ckpts/base'" --gin.PROMPT_FILE="'/prompts/rte.npy'" \
    --gin.MIXTURE_OR_TASK_NAME="'taskless_super_glue_rte_v102'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" \
    --gin.INFER_OUTPUT_FILE="'/out/rte_test.jsonl'" --gin.SPLIT="'test'"

Each output line is {"inputs": ..., "prediction": ..., "targets": ...} (text).
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

from prompt_tuning import cli
from prompt_tuning.cli import distributed, gin_config


def define_flags(values: flags.FlagValues) -> None:
    gin_config.define_flags(values)
    distributed.define_flags(values)


def main(argv: Sequence[str]) -> None:
    from prompt_tuning.evaluation import jobs  # pylint: disable=import-outside-toplevel

    values = cli.parse_flags(gin_config.rewrite_gin_args(argv), define_flags, __doc__)
    distributed.initialize(values)
    gin_config.apply_flags(values, "infer")
    config = gin_config.build(jobs.InferJobConfig, "runs/prompt_infer.gin")
    count = jobs.infer(config)
    print(f"wrote {count} predictions to {config.output_file} ({config.decoding.describe()})")


if __name__ == "__main__":
    cli.run(main)
