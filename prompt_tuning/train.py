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

The resolved config is saved as MODEL_DIR/config.gin.
"""

from __future__ import annotations

import sys

from absl import flags

from prompt_tuning import gin_launch

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "gin files (searched in --gin_search_paths and configs/).")
flags.DEFINE_multi_string("gin_bindings", [], "gin bindings, e.g. 'TRAIN_STEPS = 100'.")
flags.DEFINE_list("gin_search_paths", [], "extra directories to find gin files in.")
flags.DEFINE_string("tfds_data_dir", None, "where TFDS datasets are prepared.")


def parse_flags(argv: list[str]) -> None:
    FLAGS(gin_launch.rewrite_gin_args(argv))
    if FLAGS.tfds_data_dir:
        import os  # pylint: disable=import-outside-toplevel
        import seqio  # pylint: disable=import-outside-toplevel
        if not os.path.isdir(FLAGS.tfds_data_dir):
            raise ValueError(f"--tfds_data_dir {FLAGS.tfds_data_dir} does not exist.")
        seqio.set_tfds_data_dir_override(FLAGS.tfds_data_dir)


def main(argv: list[str]) -> None:
    import gin  # pylint: disable=import-outside-toplevel

    from prompt_tuning.training import loop  # pylint: disable=import-outside-toplevel

    parse_flags(argv)
    train_using_gin = gin.configurable(loop.train)
    gin_launch.parse(FLAGS.gin_file, FLAGS.gin_bindings, FLAGS.gin_search_paths)
    summary = train_using_gin(on_start=gin_launch.save_operative_config)
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
    gin_launch.run_cli(lambda: main(sys.argv))
