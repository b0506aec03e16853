r"""The embedded default: train, evaluate and export a prompt on the tiny built-in model and task.

  python -m prompt_tuning.demo --model_dir=/tmp/prompt_tuning_default

Runs `prompt_tuning.train` with configs/runs/embedded_default.gin (the tiny T5 shipped in
prompt_tuning/assets/tiny_t5, the built-in `taskless_builtin_topic` task), then exports the
best prompt as .npy and as a PEFT adapter, and prints the dev accuracy of the untrained and the
trained prompt beside the majority-class baseline.
"""

from __future__ import annotations

import collections
import os
import shutil
import sys

from absl import flags

from prompt_tuning import gin_launch

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", "/tmp/prompt_tuning_default", "where the run and exports go.")
flags.DEFINE_integer("train_steps", None, "override TRAIN_STEPS of the default config.")
flags.DEFINE_bool("resume", False, "continue the run in --model_dir instead of starting afresh.")

TASK = "taskless_builtin_topic"


def majority_baseline(task_name: str, split: str = "validation") -> float:
    """Accuracy (%) of always predicting the most frequent target of `split`."""
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    dataset = tasks.get_task_or_mixture(task_name).get_dataset(
        sequence_length=None, split=split, shuffle=False)
    counts = collections.Counter(ex["targets_pretokenized"].decode()
                                 for ex in dataset.as_numpy_iterator())
    return 100.0 * max(counts.values()) / sum(counts.values())


def main(argv: list[str]) -> None:
    import gin  # pylint: disable=import-outside-toplevel

    from prompt_tuning import export  # pylint: disable=import-outside-toplevel
    from prompt_tuning.training import checkpointing, loop  # pylint: disable=import-outside-toplevel

    FLAGS(argv)
    model_dir = os.path.abspath(FLAGS.model_dir)
    if not FLAGS.resume and os.path.exists(os.path.join(model_dir, checkpointing.RUN_FILE)):
        shutil.rmtree(model_dir)  # a previous demo run: start afresh
    bindings = [f"MODEL_DIR = '{model_dir}'"]
    if FLAGS.train_steps:
        bindings.append(f"TRAIN_STEPS = {FLAGS.train_steps}")
    train_using_gin = gin.configurable(loop.train)
    gin_launch.parse(["runs/embedded_default.gin"], bindings)
    print(f"Prompt-tuning the built-in tiny T5 on '{TASK}' (run in {model_dir}) ...", flush=True)
    summary = train_using_gin(on_start=gin_launch.save_operative_config)

    exports = os.path.join(model_dir, "export")
    prompt, metadata = export.prompt_from_run(model_dir, "best")
    npy = export.export(prompt, metadata, "npy", os.path.join(exports, "prompt.npy"), True)
    peft = export.export(prompt, metadata, "peft", os.path.join(exports, "peft"), True)

    before = summary["initial_eval"]["metrics"][TASK]["accuracy"]
    after = summary["best_metrics"][TASK]["accuracy"]
    print()
    print(f"dev accuracy, majority class:   {majority_baseline(TASK):6.2f}")
    print(f"dev accuracy, untrained prompt: {before:6.2f}")
    print(f"dev accuracy, trained prompt:   {after:6.2f}  (best of step {summary['best_step']})")
    print(f"exported [{prompt.shape[0]}, {prompt.shape[1]}] prompt: {npy} (+ .json metadata)")
    print(f"exported PEFT adapter:           {peft}")
    print(f"TensorBoard logs: {model_dir}/train, {model_dir}/validation; config: {model_dir}/config.gin")


if __name__ == "__main__":
    gin_launch.run_cli(lambda: main(sys.argv))
