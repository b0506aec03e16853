r"""Evaluates a prompt on a task's dev split with the task's metrics, T5X style.

  python -m prompt_tuning.eval \
    --gin_file=models/t5_1_1_base_prompt.gin --gin_file=runs/prompt_eval.gin \
    --gin.INITIAL_CHECKPOINT_PATH="'/ckpts/base'" --gin.PROMPT_FILE="'/prompts/rte.npy'" \
    --gin.MIXTURE_OR_TASK_NAME="'taskless_super_glue_rte_v102'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" --gin.EVAL_OUTPUT_DIR="'/evals/rte'"

The prompt comes from PROMPT_FILE (an exported .npy or PEFT adapter) or, without it, from
MODEL_DIR's best (or CHECKPOINT_STEP) checkpoint.
"""

from __future__ import annotations

import sys

from prompt_tuning import gin_launch
from prompt_tuning import train as train_cli


def main(argv: list[str]) -> None:
    import gin  # pylint: disable=import-outside-toplevel

    from prompt_tuning.evaluation import jobs  # pylint: disable=import-outside-toplevel

    train_cli.parse_flags(argv)
    evaluate_using_gin = gin.configurable(jobs.evaluate)
    gin_launch.parse(train_cli.FLAGS.gin_file, train_cli.FLAGS.gin_bindings,
                     train_cli.FLAGS.gin_search_paths)
    result = evaluate_using_gin()
    for task, metrics in result["metrics"].items():
        print(f"{task} ({result['split']}, {result['mode']}): "
              + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
    print(f"prompt: {result['prompt']}")


if __name__ == "__main__":
    gin_launch.run_cli(lambda: main(sys.argv))
