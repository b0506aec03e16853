r"""Decodes a split with a prompt and writes JSONL predictions, T5X style.

  python -m prompt_tuning.infer \
    --gin_file=models/t5_1_1_base_prompt.gin --gin_file=runs/prompt_infer.gin \
    --gin.INITIAL_CHECKPOINT_PATH="'/ckpts/base'" --gin.PROMPT_FILE="'/prompts/rte.npy'" \
    --gin.MIXTURE_OR_TASK_NAME="'taskless_super_glue_rte_v102'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" \
    --gin.INFER_OUTPUT_FILE="'/out/rte_test.jsonl'" --gin.SPLIT="'test'"
"""

from __future__ import annotations

import sys

from prompt_tuning import gin_launch
from prompt_tuning import train as train_cli


def main(argv: list[str]) -> None:
    import gin  # pylint: disable=import-outside-toplevel

    from prompt_tuning.evaluation import jobs  # pylint: disable=import-outside-toplevel

    train_cli.parse_flags(argv)
    infer_using_gin = gin.configurable(jobs.infer)
    gin_launch.parse(train_cli.FLAGS.gin_file, train_cli.FLAGS.gin_bindings,
                     train_cli.FLAGS.gin_search_paths)
    count = infer_using_gin()
    print(f"wrote {count} predictions to {gin.query_parameter('INFER_OUTPUT_FILE/macro.value')}")


if __name__ == "__main__":
    gin_launch.run_cli(lambda: main(sys.argv))
