"""A trained prompt out of a run (or a prompt file) and into `.npy` + metadata or a PEFT adapter.

Library side of `python -m prompt_tuning.export_prompt`; the embedded default uses it too.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

import numpy as np

from prompt_tuning import errors, filesystem, paths


def _init_name(model_dir: str) -> Optional[str]:
    """The prompt initializer named in the run's operative gin config, if recorded."""
    path = filesystem.join(model_dir, "config.gin")
    if not filesystem.exists(path):
        return None
    match = re.search(r"PromptConfig\.init\s*=\s*@([\w.]+)", filesystem.read_text(path))
    return match.group(1).split(".")[-1] if match else "random_uniform"


def check_step(step: str) -> str:
    """'best', 'latest' or a step number (as a string); a UsageError otherwise."""
    step = str(step)
    if step not in ("best", "latest") and not step.isdigit():
        raise errors.UsageError(f"the step must be 'best', 'latest' or a step number (--step, "
                                f"CHECKPOINT_STEP), got {step!r}.")
    return step


def _own_evaluation(info: dict[str, Any], step: int) -> tuple[Any, Any]:
    """(score, metrics) recorded for `step` itself: the best's own record, or the run's history
    of evaluations; (None, None) for a step that was never evaluated."""
    if "score" in info:  # a best checkpoint: its own evaluation
        return info["score"], info.get("metrics")
    evaluation = (info.get("evals") or {}).get(str(step))
    if evaluation is None:
        return None, None
    return evaluation.get("score"), evaluation.get("metrics")


def _read_run(model_dir: str, step: str) -> tuple[str, dict, np.ndarray, dict]:
    """(model_dir made absolute, its run.json, the prompt or table of `step`, the step's info)."""
    from prompt_tuning import run_dir  # pylint: disable=import-outside-toplevel
    from prompt_tuning.prompts import files, seam  # pylint: disable=import-outside-toplevel

    step = check_step(step)
    model_dir = paths.resolve(model_dir)
    if not filesystem.exists(filesystem.join(model_dir, run_dir.RUN_FILE)):
        raise errors.UserError(f"{model_dir} is not a prompt-tuning run directory (no "
                               f"{run_dir.RUN_FILE}).")
    run = run_dir.read_run_file(model_dir)
    runs = run_dir.RunCheckpoints(model_dir)
    try:
        params, info = runs.restore_params(step)
    finally:
        runs.close()
    prompt = np.asarray(params[seam.PATH], np.float32)
    files.check_finite(prompt, f"{model_dir} step {info['step']}")
    return model_dir, run, prompt, info


def prompt_from_run(model_dir: str, step: str, task: Optional[str] = None
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    """The prompt `[P, d]` of a run's checkpoint (`best`, `latest` or a step) and its metadata.

    The metadata's dev metric is that step's own, or None if that step was never evaluated.
    A multi-task run (MULTI_TASK) holds one prompt per task: `task` picks one, and its own dev
    metrics.
    """
    model_dir, run, prompt, info = _read_run(model_dir, step)
    score, metrics = _own_evaluation(info, int(info["step"]))
    task_name, step_number = _run_value(run, "task"), int(info["step"])
    if prompt.ndim == 3 or task is not None:
        prompt, task_name, score, metrics = _task_row(run, prompt, task, model_dir, metrics)
        # A multi-task run's best holds each task's prompt from its own best step.
        step_number = int((info.get("steps") or {}).get(task_name, step_number))
    metadata = {"model": _run_value(run, "initial_checkpoint_path"),
                "prompt_length": int(prompt.shape[0]), "embed_dim": int(prompt.shape[1]),
                "dtype": "float32", "init": _init_name(model_dir), "task": task_name,
                "step": step_number, "dev_metric": score, "dev_metrics": metrics}
    return prompt, metadata


def run_prompts(model_dir: str, step: str) -> tuple[np.ndarray, Optional[list[str]], str]:
    """(the prompt `[P, d]`, or a multi-task run's table `[n, P, d]`; the table's tasks in row
    order, else None; where it came from) of a run's checkpoint."""
    model_dir, run, prompt, info = _read_run(model_dir, step)
    if prompt.ndim == 2:
        return prompt, None, f"{model_dir} step {info['step']}"
    names = _prompt_tasks(run)
    return prompt, names, f"{model_dir} step {info['step']} ({len(names)} task prompts)"


def _prompt_tasks(run: dict[str, Any]) -> list[str]:
    from prompt_tuning.data import multitask  # pylint: disable=import-outside-toplevel

    dataset = run.get("train_dataset") or {}
    return multitask.prompt_tasks(dataset.get("mixture_or_task_name"),
                                  dataset.get("split", "train"))


def _task_row(run: dict[str, Any], table: np.ndarray, task: Optional[str], model_dir: str,
              metrics: Optional[dict]) -> tuple[np.ndarray, str, Any, Any]:
    """(task's prompt [P, d], task, its score, its metrics) of a multi-task run's table."""
    if table.ndim != 3:
        raise errors.UsageError(f"--task is for multi-task runs (MULTI_TASK); {model_dir} "
                                "trained one prompt.")
    names = _prompt_tasks(run)
    if task is None or task not in names:
        what = "choose one" if task is None else f"{task!r} is not one of them"
        raise errors.UserError(f"{model_dir} trained {len(names)} prompts, one per task "
                               f"({names}): {what} (export_prompt --task=NAME).")
    own = (metrics or {}).get(task)
    score = float(np.mean(list(own.values()))) if own else None
    return table[names.index(task)], task, score, ({task: own} if own else None)


def _run_value(run: dict[str, Any], key: str) -> Any:
    """The model path or the task of a run.json (`TrainConfig.identity()`)."""
    if key == "task":
        return (run.get("train_dataset") or {}).get("mixture_or_task_name")
    return (run.get("model") or {}).get(key)


def prompt_from_file(path: str) -> tuple[np.ndarray, dict[str, Any]]:
    """A prompt file (.npy, PEFT adapter, our export) and whatever metadata lies beside it."""
    from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel

    prompt = files.read_prompt(path)
    metadata: dict[str, Any] = {"model": None, "init": None, "task": None, "step": None,
                                "dev_metric": None}
    sidecar = (path[:-4] if path.endswith(".npy") else path) + ".json"
    for candidate in (sidecar, filesystem.join(path, "prompt.json")):
        if filesystem.isfile(candidate):
            metadata.update(json.loads(filesystem.read_text(candidate)))
            break
    metadata.update(prompt_length=int(prompt.shape[0]), embed_dim=int(prompt.shape[1]),
                    dtype="float32", source=paths.resolve(path))
    return prompt, metadata


def export(prompt: np.ndarray, metadata: dict[str, Any], fmt: str, output: str,
           overwrite: bool = False, base_model: Optional[str] = None) -> str:
    """Writes `prompt` as `fmt` ("npy" or "peft") at `output`, atomically; returns the path.
    A PEFT adapter names a base model Hugging Face can load (`peft_base`; `base_model` is
    `--base_model`), or says in a note why it names none."""
    from prompt_tuning import notes  # pylint: disable=import-outside-toplevel
    from prompt_tuning.export import peft_base  # pylint: disable=import-outside-toplevel
    from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel

    base, base_note = (peft_base.base_model(metadata.get("model"), base_model)
                       if fmt == "peft" else (None, None))
    output = paths.resolve(output)
    if fmt == "npy":
        if not output.endswith(".npy"):
            raise errors.UsageError(f"--output for --format=npy must end in .npy, got {output}.")
        paths.check_output_file(output, "--output")
    else:
        paths.check_output_dir(output, "--output")
    if filesystem.exists(output) and not overwrite:
        raise errors.UserError(f"--output {output} already exists (pass --overwrite to "
                               "replace it).")
    if fmt == "npy":
        files.write_npy(prompt, output, metadata)
    else:
        files.write_peft(prompt, output, base_model_name_or_path=base, metadata=metadata,
                         overwrite=overwrite)
        if base_note:
            notes.note(base_note)
    return output
