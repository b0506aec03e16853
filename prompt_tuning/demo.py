r"""The embedded default: train, evaluate and export a prompt on the tiny built-in model and task.

  python -m prompt_tuning.demo [--model_dir=DIR] [--train_steps=N] [--resume]

Runs `prompt_tuning.train` with runs/embedded_default.gin (the tiny T5 shipped in
prompt_tuning/assets/tiny_t5, the built-in `taskless_builtin_topic` task), then exports the
best prompt as .npy and as a PEFT adapter, and prints the dev accuracy of the untrained and the
trained prompt beside the majority-class baseline.

Without --model_dir the run goes to a new directory of its own under the system's temporary
directory (a fresh name every time, so two demos never meet). A --model_dir must be new or
empty, unless --resume continues the demo run already in it. The demo never deletes anything.
"""

from __future__ import annotations

import collections
import os
import secrets
import tempfile
import time
from typing import Sequence

from absl import flags

from prompt_tuning import cli, errors, paths

TASK = "taskless_builtin_topic"


def define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_string("model_dir", None, "where the run and exports go (default: a new "
                        "directory under the system's temporary directory).", flag_values=values)
    flags.DEFINE_integer("train_steps", None, "override TRAIN_STEPS of the default config.",
                         flag_values=values)
    flags.DEFINE_bool("resume", False, "continue the demo run in --model_dir.",
                      flag_values=values)


def majority_baseline(task_name: str, split: str = "validation") -> float:
    """Accuracy (%) of always predicting the most frequent target of `split`."""
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    dataset = tasks.get_task_or_mixture(task_name).get_dataset(
        sequence_length=None, split=split, shuffle=False)
    counts = collections.Counter(ex["targets_pretokenized"].decode()
                                 for ex in dataset.as_numpy_iterator())
    return 100.0 * max(counts.values()) / sum(counts.values())


def _model_dir(given: str | None, resume: bool) -> str:
    """The run's directory: a fresh one of our own, or the user's (new, empty, or resumed)."""
    if given is None:
        if resume:
            raise errors.UsageError("--resume needs --model_dir (the demo run to continue).")
        # A name no other run has; the directory appears only when the run first writes.
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return os.path.join(tempfile.gettempdir(), f"prompt_tuning_default_{stamp}_"
                                                   f"{os.getpid()}_{secrets.token_hex(3)}")
    model_dir = paths.resolve(given)
    paths.check_output_dir(model_dir, "--model_dir")
    if os.path.isdir(model_dir) and os.listdir(model_dir) and not resume:
        raise errors.UsageError(f"--model_dir {model_dir} is not empty; the demo writes only into "
                                "a new or empty directory (pass --resume to continue the demo "
                                "run in it, or leave --model_dir out).")
    return model_dir


def main(argv: Sequence[str]) -> None:
    from prompt_tuning import export  # pylint: disable=import-outside-toplevel
    from prompt_tuning.cli import gin_config  # pylint: disable=import-outside-toplevel
    from prompt_tuning.train import run_training  # pylint: disable=import-outside-toplevel
    from prompt_tuning.training.config import TrainConfig  # pylint: disable=import-outside-toplevel

    values = cli.parse_flags(argv, define_flags, __doc__)
    if values.train_steps is not None and values.train_steps <= 0:
        raise errors.UsageError(f"--train_steps must be a positive integer, got "
                                f"{values.train_steps}.")
    model_dir = _model_dir(values.model_dir, values.resume)
    bindings = [f"MODEL_DIR = {model_dir!r}"]
    if values.train_steps is not None:
        bindings.append(f"TRAIN_STEPS = {values.train_steps}")
    gin_config.parse(["runs/embedded_default.gin"], bindings)
    config = gin_config.build(TrainConfig)
    print(f"Prompt-tuning the built-in tiny T5 on '{TASK}' (run in {model_dir}) ...", flush=True)
    summary = run_training(config)

    exports = os.path.join(model_dir, "export")
    prompt, metadata = export.prompt_from_run(model_dir, "best")
    npy = export.export(prompt, metadata, "npy", os.path.join(exports, "prompt.npy"), True)
    peft = export.export(prompt, metadata, "peft", os.path.join(exports, "peft"), True)

    before = (summary.get("initial_eval") or {}).get("metrics", {}).get(TASK, {}).get("accuracy")
    after = summary["best_metrics"][TASK]["accuracy"]
    print()
    print(f"dev accuracy, majority class:   {majority_baseline(TASK):6.2f}")
    if before is not None:
        print(f"dev accuracy, untrained prompt: {before:6.2f}")
    print(f"dev accuracy, trained prompt:   {after:6.2f}  (best of step {summary['best_step']})")
    print(f"exported [{prompt.shape[0]}, {prompt.shape[1]}] prompt: {npy} (+ .json metadata)")
    print(f"exported PEFT adapter:           {peft}")
    print(f"TensorBoard logs: {model_dir}/train, {model_dir}/validation; config: {model_dir}/config.gin")


if __name__ == "__main__":
    cli.run(main)
