r"""Exports a trained prompt as `.npy` (+ metadata JSON) or as a PEFT adapter directory.

  python -m prompt_tuning.export_prompt --model_dir=/runs/rte --step=best --format=npy \
      --output=/prompts/rte.npy
  python -m prompt_tuning.export_prompt --prompt=/prompts/rte.npy --format=peft --output=/prompts/rte_peft

From a run (`--model_dir`, `--step` = best (default), latest or a step number) or converting an
existing prompt file (`--prompt`: .npy, PEFT adapter, or one of our exports).
"""

from __future__ import annotations

import sys

from absl import flags

from prompt_tuning import gin_launch
from prompt_tuning.export import export, prompt_from_file, prompt_from_run

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "a training run's MODEL_DIR.")
flags.DEFINE_string("step", "best", "best, latest, or a step number (with --model_dir).")
flags.DEFINE_string("prompt", None, "an existing prompt file or directory to convert.")
flags.DEFINE_enum("format", "npy", ["npy", "peft"], "output format.")
flags.DEFINE_string("output", None, "output .npy path (npy) or directory (peft).")
flags.DEFINE_bool("overwrite", False, "replace an existing output.")


def main(argv: list[str]) -> None:
    FLAGS(argv)
    if bool(FLAGS.model_dir) == bool(FLAGS.prompt):
        raise ValueError("give exactly one of --model_dir (a training run) or --prompt (a file).")
    if not FLAGS.output:
        raise ValueError("--output is required.")
    if FLAGS.model_dir:
        prompt, metadata = prompt_from_run(FLAGS.model_dir, FLAGS.step)
    else:
        prompt, metadata = prompt_from_file(FLAGS.prompt)
    path = export(prompt, metadata, FLAGS.format, FLAGS.output, FLAGS.overwrite)
    print(f"exported prompt [{prompt.shape[0]}, {prompt.shape[1]}] "
          f"(step {metadata.get('step')}, dev metric {metadata.get('dev_metric')}) "
          f"as {FLAGS.format} to {path}")


if __name__ == "__main__":
    gin_launch.run_cli(lambda: main(sys.argv))
