r"""Prompt-tunes a frozen T5, T5X style.

  python -m prompt_tuning.train \
    --gin_file=models/t5_1_1_base_prompt.gin \
    --gin_file=prompts/from_class_labels.gin \
    --gin_file=runs/prompt_finetune.gin \
    --gin.INITIAL_CHECKPOINT_PATH="'/ckpts/t5_1_1_lm100k_base/checkpoint_1100000'" \
    --gin.MIXTURE_OR_TASK_NAME="'taskless_super_glue_rte_v102'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" \
    --gin.CLASS_LABELS="['entailment', 'not_entailment']" \
    --gin.TRAIN_STEPS=30000 --gin.MODEL_DIR="'/runs/rte'"

The resolved config is saved as MODEL_DIR/config.gin. Killed and started again with the same
command, a run resumes from its last checkpoint.

--dry_run compiles the train step for the mesh from shapes alone (no path given is looked at:
the checkpoint, the data, MODEL_DIR may be gs:// or not there yet; nothing is written) and says
whether it fits the devices' memory:
  XLA_FLAGS=--xla_force_host_platform_device_count=32 python -m prompt_tuning.train \
    --gin_file=models/t5_1_1_xxl_prompt.gin ... \
    --gin.partitioning.PjitPartitioner.model_parallel_submesh='(4, 4, 1, 2)' \
    --dry_run --device_memory_gib=16
Its last line is `dry run: fits|does not fit: peak ...`; the exit status is 1 if it does not fit.
"""

from __future__ import annotations

# pylint: disable=wrong-import-position
if __name__ == "__main__":  # Ctrl-C honoured during the imports below too (interrupts.py)
    from prompt_tuning import interrupts
    interrupts.install()

from typing import Any, Sequence

from absl import flags

from prompt_tuning import cli, shapes_only
from prompt_tuning.cli import distributed, dry_run, gin_config


def run_training(config: Any) -> dict[str, Any]:
    """Trains with the dev-set evaluator of `config.evaluation` wired into the loop."""
    from prompt_tuning.evaluation import task_evaluator  # pylint: disable=import-outside-toplevel
    from prompt_tuning.training import loop  # pylint: disable=import-outside-toplevel

    if config.evaluation is None:
        return loop.train(config, None, on_start=gin_config.save_operative_config)
    lengths = config.train_dataset.task_feature_lengths

    def make_evaluator(model, vocabulary, placement, shardings, prompt_tasks):
        # A multi-task run: each task is evaluated with its own row of the prompt table.
        prompt_index = {name: i for i, name in enumerate(prompt_tasks)} or None
        return task_evaluator(config.evaluation, lengths, model, vocabulary, placement,
                              shardings, prompt_index)

    return loop.train(config, make_evaluator, on_start=gin_config.save_operative_config)


def report_dry_run(config: Any, device_memory_gib: Any) -> None:
    """The memory of the train step and of the dev-set evaluation the run does."""
    # pylint: disable=import-outside-toplevel
    from prompt_tuning.data import vocab
    from prompt_tuning.evaluation import dry_run as eval_dry_run
    from prompt_tuning.runtime import Placement, memory
    from prompt_tuning.training import dry_run as train_dry_run

    device_memory = memory.device_memory(device_memory_gib)
    placement = Placement.of(config.partitioning)
    programs = [train_dry_run.train_step_memory(config, placement)]
    if config.evaluation is not None:
        model = memory.abstract_model(config.model, config.prompt, placement)
        programs += eval_dry_run.evaluation_memory(
            config.evaluation, config.train_dataset.task_feature_lengths, model,
            vocab.get_vocabulary(config.model.vocabulary_path), placement)
    dry_run.finish(placement, programs, device_memory)


def define_flags(values: flags.FlagValues) -> None:
    gin_config.define_flags(values)
    distributed.define_flags(values)
    dry_run.define_flags(values)


def main(argv: Sequence[str]) -> None:
    from prompt_tuning.training.config import TrainConfig  # pylint: disable=import-outside-toplevel

    values = cli.parse_flags(gin_config.rewrite_gin_args(argv), define_flags, __doc__)
    distributed.initialize(values)
    dry_run.check_flags(values)
    with shapes_only.building(values.dry_run):  # a dry run looks at no path it was given
        gin_config.apply_flags(values, "train")
        config = gin_config.build(TrainConfig)
        if values.dry_run:
            report_dry_run(config, values.device_memory_gib)
            return
    summary = run_training(config)
    print_summary(summary)


def print_summary(summary: dict) -> None:
    initial = summary.get("initial_eval")
    if initial:
        print(f"dev score of the untrained prompt: {initial['score']:.2f}  {initial['metrics']}")
    final = summary.get("final_eval")
    if final:
        print(f"dev score at step {summary['final_step']}: {final['score']:.2f}  {final['metrics']}")
    if summary.get("best_step") is not None:
        print(f"best dev score {summary['best_score']:.2f} at step {summary['best_step']}")


if __name__ == "__main__":
    cli.run(main)
