"""A trained prompt out of a run (or a prompt file) and into `.npy` + metadata or a PEFT adapter.

Library side of `python -m prompt_tuning.export_prompt`; the embedded default uses it too.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Optional

import numpy as np


def _init_name(model_dir: str) -> Optional[str]:
    """The prompt initializer named in the run's operative gin config, if recorded."""
    path = os.path.join(model_dir, "config.gin")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        match = re.search(r"PromptConfig\.init\s*=\s*@([\w.]+)", f.read())
    return match.group(1).split(".")[-1] if match else "random_uniform"


def prompt_from_run(model_dir: str, step: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The prompt `[P, d]` of a run's checkpoint (`best`, `latest` or a step) and its metadata."""
    from prompt_tuning.training import checkpointing  # pylint: disable=import-outside-toplevel

    if step not in ("best", "latest") and not str(step).isdigit():
        raise ValueError(f"the step must be 'best', 'latest' or a step number (--step, "
                         f"CHECKPOINT_STEP), got {step!r}.")
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
    """A prompt file (.npy, PEFT adapter, our export) and whatever metadata lies beside it."""
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
    """Writes `prompt` as `fmt` ("npy" or "peft") at `output`, atomically; returns the path."""
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
