r"""Evaluates a prompt on a task's dev split with the task's metrics, T5X style.

  python -m prompt_tuning.eval \
    --gin_file=models/t5_1_1_base_prompt.gin --gin_file=runs/prompt_eval.gin \
    --gin.INITIAL_CHECKPOINT_PATH="'/ckpts/base'" --gin.PROMPT_FILE="'/prompts/rte.npy'" \
    --gin.MIXTURE_OR_TASK_NAME="'taskless_super_glue_rte_v102'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" --gin.EVAL_OUTPUT_DIR="'/evals/rte'"

The prompt comes from PROMPT_FILE (an exported .npy or PEFT adapter) or, without it, from
MODEL_DIR's best (or CHECKPOINT_STEP) checkpoint. The results are written to
EVAL_OUTPUT_DIR/eval_results.json. `--dry_run` compiles the evaluation for the mesh from shapes
alone and reports the memory per device (see `train --help`); it takes the prompt's length from
PROMPT_FILE or MODEL_DIR when that is a local path that exists, else PROMPT_LENGTH.
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

from prompt_tuning import cli, errors, shapes_only
from prompt_tuning.cli import distributed, dry_run, gin_config


def define_flags(values: flags.FlagValues) -> None:
    gin_config.define_flags(values)
    distributed.define_flags(values)
    dry_run.define_flags(values)


def main(argv: Sequence[str]) -> None:
    from prompt_tuning.evaluation import jobs  # pylint: disable=import-outside-toplevel

    values = cli.parse_flags(gin_config.rewrite_gin_args(argv), define_flags, __doc__)
    distributed.initialize(values)
    dry_run.check_flags(values)
    with shapes_only.building(values.dry_run):  # a dry run looks at no path it was given
        gin_config.apply_flags(values, "eval")
        config = gin_config.build(jobs.EvalJobConfig, "runs/prompt_eval.gin")
        if values.dry_run:
            # pylint: disable=import-outside-toplevel
            from prompt_tuning.evaluation import dry_run as eval_dry_run
            from prompt_tuning.runtime import Placement, memory
            device_memory = memory.device_memory(values.device_memory_gib)
            placement = Placement.of(config.partitioning)
            programs = eval_dry_run.eval_job_memory(config, placement, _prompt_length())
            dry_run.finish(placement, programs, device_memory)
            return
    result = jobs.evaluate(config)
    for task, metrics in result["metrics"].items():
        print(f"{task} ({result['split']}, {result['mode']}): "
              + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
    for member, scored in result.get("members", {}).items():
        for task, metrics in scored["metrics"].items():
            print(f"  {member}: {task} " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
    print(f"prompt: {result['prompt']}")
    print(f"wrote {config.output_dir}/{jobs.RESULTS_FILE}")


def _prompt_length() -> int:
    """PROMPT_LENGTH as the models/ file binds it (PromptConfig's default without one)."""
    from prompt_tuning.prompts import PromptConfig  # pylint: disable=import-outside-toplevel
    try:
        return gin_config.build(PromptConfig).length
    except errors.UsageError:  # no models/ file of ours configures the prompt
        return PromptConfig().length


if __name__ == "__main__":
    cli.run(main)
