r"""Exports a trained prompt as `.npy` (+ metadata JSON) or as a PEFT adapter directory.

  python -m prompt_tuning.export_prompt --model_dir=/runs/rte --step=best --format=npy \
      --output=/prompts/rte.npy
  python -m prompt_tuning.export_prompt --prompt=/prompts/rte.npy --format=peft --output=/prompts/rte_peft

From a run (`--model_dir`, `--step` = best (default), latest or a step number) or converting an
existing prompt file (`--prompt`: .npy, PEFT adapter, or one of our exports).
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, Optional

import numpy as np
from absl import flags

from prompt_tuning import gin_launch

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "a training run's MODEL_DIR.")
flags.DEFINE_string("step", "best", "best, latest, or a step number (with --model_dir).")
flags.DEFINE_string("prompt", None, "an existing prompt file or directory to convert.")
flags.DEFINE_enum("format", "npy", ["npy", "peft"], "output format.")
flags.DEFINE_string("output", None, "output .npy path (npy) or directory (peft).")
flags.DEFINE_bool("overwrite", False, "replace an existing output.")


def _init_name(model_dir: str) -> Optional[str]:
    """The prompt initializer named in the run's operative gin config, if recorded."""
    path = os.path.join(model_dir, "config.gin")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        match = re.search(r"PromptConfig\.init\s*=\s*@([\w.]+)", f.read())
    return match.group(1).split(".")[-1] if match else "random_uniform"


def prompt_from_run(model_dir: str, step: str) -> tuple[np.ndarray, dict[str, Any]]:
    from prompt_tuning.training import checkpointing  # pylint: disable=import-outside-toplevel

    run_file = os.path.join(model_dir, checkpointing.RUN_FILE)
    if not os.path.exists(run_file):
        raise ValueError(f"{model_dir} is not a prompt-tuning run directory (no {checkpointing.RUN_FILE}).")
    with open(run_file) as f:
        run = json.load(f)
    runs = checkpointing.RunCheckpoints(model_dir)
    try:
        params, info = runs.restore_params(step)
    finally:
        runs.close()
    prompt = np.asarray(params["prompt/prompt"], np.float32)
    metrics = info.get("metrics") or info.get("best_metrics")
    score = info.get("score", info.get("best_score"))
    metadata = {"model": run.get("initial_checkpoint_path"), "prompt_length": int(prompt.shape[0]),
                "embed_dim": int(prompt.shape[1]), "dtype": "float32",
                "init": _init_name(model_dir), "task": run.get("task"), "step": int(info["step"]),
                "dev_metric": score, "dev_metrics": metrics}
    return prompt, metadata


def prompt_from_file(path: str) -> tuple[np.ndarray, dict[str, Any]]:
    from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel

    prompt = files.read_prompt(path)
    metadata: dict[str, Any] = {"model": None, "init": None, "task": None, "step": None,
                                "dev_metric": None}
    sidecar = (path[:-4] if path.endswith(".npy") else path) + ".json"
    for candidate in (sidecar, os.path.join(path, "prompt.json")):
        if os.path.isfile(candidate):
            with open(candidate) as f:
                metadata.update(json.load(f))
            break
    metadata.update(prompt_length=int(prompt.shape[0]), embed_dim=int(prompt.shape[1]),
                    dtype="float32", source=os.path.abspath(path))
    return prompt, metadata


def export(prompt: np.ndarray, metadata: dict[str, Any], fmt: str, output: str,
           overwrite: bool = False) -> str:
    from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel

    if os.path.exists(output) and not overwrite:
        raise ValueError(f"--output {output} already exists (pass --overwrite to replace it).")
    if fmt == "npy":
        if not output.endswith(".npy"):
            raise ValueError(f"--output for --format=npy must end in .npy, got {output}.")
        files.write_npy(prompt, output, metadata)
    else:
        files.write_peft(prompt, output, base_model_name_or_path=metadata.get("model"),
                         metadata=metadata, overwrite=overwrite)
    return output


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
