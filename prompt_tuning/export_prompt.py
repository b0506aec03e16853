r"""Exports a trained prompt as `.npy` (+ metadata JSON) or as a PEFT adapter directory.

  python -m prompt_tuning.export_prompt --model_dir=/runs/rte --step=best --format=npy \
      --output=/prompts/rte.npy
  python -m prompt_tuning.export_prompt --prompt=/prompts/rte.npy --format=peft --output=/prompts/rte_peft

From a run (`--model_dir`, `--step` = best (default), latest or a step number; `--task=NAME`
for one prompt of a multi-task run) or converting an existing prompt file (`--prompt`: .npy, PEFT adapter, or one of our exports). The metadata
records the exported step's own dev metric (null for a step that was never evaluated).

A PEFT adapter names its base model (`base_model_name_or_path`) so that
`AutoPeftModelForSeq2SeqLM.from_pretrained(ADAPTER)` loads it: the run's checkpoint when it is a
Hugging Face T5 directory (`builtin:tiny_t5`: its shipped directory), or --base_model, e.g. what
`convert_checkpoint --to=huggingface` wrote from a T5X checkpoint:

  python -m prompt_tuning.convert_checkpoint --input=/ckpts/base --output=/models/base_hf \
      --to=huggingface
  python -m prompt_tuning.export_prompt --model_dir=/runs/rte --format=peft \
      --output=/prompts/rte_peft --base_model=/models/base_hf
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

from prompt_tuning import cli, errors


def define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_string("model_dir", None, "a training run's MODEL_DIR.", flag_values=values)
    flags.DEFINE_string("step", "best", "best, latest, or a step number (with --model_dir).",
                        flag_values=values)
    flags.DEFINE_string("prompt", None, "an existing prompt file or directory to convert.",
                        flag_values=values)
    flags.DEFINE_enum("format", "npy", ["npy", "peft"], "output format.", flag_values=values)
    flags.DEFINE_string("output", None, "output .npy path (npy) or directory (peft).",
                        flag_values=values)
    flags.DEFINE_bool("overwrite", False, "replace an existing output.", flag_values=values)
    flags.DEFINE_string("task", None, "a multi-task run's task whose prompt to export.",
                        flag_values=values)
    flags.DEFINE_string("base_model", None, "--format=peft: the Hugging Face T5 directory (or "
                        "Hub name) the adapter names as its base (default: the run's checkpoint "
                        "when it is one, builtin:tiny_t5's shipped directory).",
                        flag_values=values)


def main(argv: Sequence[str]) -> None:
    from prompt_tuning.export import (check_step, export,  # pylint: disable=import-outside-toplevel
                                      prompt_from_file, prompt_from_run)

    values = cli.parse_flags(argv, define_flags, __doc__)
    if bool(values.model_dir) == bool(values.prompt):
        raise errors.UsageError("give exactly one of --model_dir (a training run) or --prompt "
                                "(a file).")
    if not values.output:
        raise errors.UsageError("--output is required.")
    check_step(values.step)
    if values.model_dir:
        prompt, metadata = prompt_from_run(values.model_dir, values.step, values.task)
    else:
        if values.task:
            raise errors.UsageError("--task picks a prompt of a multi-task run (--model_dir).")
        prompt, metadata = prompt_from_file(values.prompt)
    if values.base_model and values.format != "peft":
        raise errors.UsageError("--base_model is for --format=peft.")
    path = export(prompt, metadata, values.format, values.output, values.overwrite,
                  values.base_model)
    metric = metadata.get("dev_metric")
    print(f"exported prompt [{prompt.shape[0]}, {prompt.shape[1]}] "
          f"(step {metadata.get('step')}, dev metric "
          f"{'not evaluated' if metric is None else f'{metric:.2f}'}) as {values.format} to {path}")


if __name__ == "__main__":
    cli.run(main)
