"""A run's checkpoints in MODEL_DIR, with orbax: only what training changes is saved.

Layout:
  MODEL_DIR/run.json                  what the run is (task, model, prompt): guards against reuse
  MODEL_DIR/checkpoints/<step>/       TrainState (prompt, optimizer state, step) + progress JSON
  MODEL_DIR/best/<step>/              the prompt with the best dev metric so far + its metrics

The frozen model is never copied: it is read from INITIAL_CHECKPOINT_PATH. orbax writes each
step into a temporary directory and renames it when complete, so a run killed at any moment
leaves only whole checkpoints, and `latest_step()` sees only those. The data position is the step
(each step consumes one batch of a deterministic pipeline), and dropout keys derive from the seed
and the step, so a resumed run continues bit-identically.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional

import jax
import orbax.checkpoint as ocp

from prompt_tuning.training.step import TrainState

PyTree = Any
RUN_FILE = "run.json"


class RunDirError(ValueError):
    """MODEL_DIR cannot be used for this run (unwritable, or another run's)."""


def check_model_dir(model_dir: str, run_description: Mapping[str, Any]) -> None:
    """Refuses an unwritable MODEL_DIR or one holding a different run; writes nothing."""
    probe = model_dir
    while not os.path.exists(probe):
        parent = os.path.dirname(os.path.abspath(probe))
        if parent == probe:
            break
        probe = parent
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise RunDirError(f"MODEL_DIR {model_dir} exists and is not a directory.")
    if not os.access(probe, os.W_OK):
        raise RunDirError(f"MODEL_DIR {model_dir} is not writable (no write access to {probe}).")
    run_file = os.path.join(model_dir, RUN_FILE)
    if os.path.isdir(model_dir) and os.listdir(model_dir) and not os.path.exists(run_file):
        raise RunDirError(f"MODEL_DIR {model_dir} is not empty and holds no {RUN_FILE}: it is not "
                          "a prompt-tuning run directory. Choose a new MODEL_DIR.")
    if os.path.exists(run_file):
        with open(run_file) as f:
            previous = json.load(f)
        diffs = [k for k in run_description if previous.get(k) != run_description[k]]
        if diffs:
            k = diffs[0]
            raise RunDirError(f"MODEL_DIR {model_dir} holds a different run ({k} was "
                              f"{previous.get(k)!r}, now {run_description[k]!r}); resume it with "
                              "the same config or choose a new MODEL_DIR.")


def write_run_file(model_dir: str, run_description: Mapping[str, Any]) -> None:
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, RUN_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(dict(run_description), f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _manager(directory: str, keep: Optional[int]) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(directory, options=options)


class RunCheckpoints:
    """Latest-N training checkpoints and the best prompt of a run."""

    def __init__(self, model_dir: str, keep: int = 2):
        if keep is not None and keep < 1:
            raise ValueError(f"CheckpointConfig.keep must be >= 1, got {keep}.")
        self.model_dir = model_dir
        self._latest = _manager(os.path.join(model_dir, "checkpoints"), keep)
        self._best = _manager(os.path.join(model_dir, "best"), 1)

    def latest_step(self) -> Optional[int]:
        return self._latest.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._latest.all_steps())

    def save(self, state: TrainState, progress: Mapping[str, Any]) -> None:
        step = int(jax.device_get(state.step))
        if step in self._latest.all_steps():
            return
        self._latest.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(dict(progress))))
        self._latest.wait_until_finished()

    def restore(self, abstract_state: TrainState, step: Optional[int] = None
                ) -> tuple[TrainState, dict]:
        step = self.latest_step() if step is None else step
        restored = self._latest.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), progress=ocp.args.JsonRestore()))
        return restored["state"], dict(restored["progress"])

    def save_best(self, step: int, prompt_params: Mapping[str, jax.Array],
                  info: Mapping[str, Any]) -> None:
        for old in self._best.all_steps():
            if old != step:
                self._best.delete(old)
        if step in self._best.all_steps():
            return
        self._best.save(step, args=ocp.args.Composite(
            params=ocp.args.StandardSave(dict(prompt_params)), info=ocp.args.JsonSave(dict(info))))
        self._best.wait_until_finished()

    def best_step(self) -> Optional[int]:
        return self._best.latest_step()

    def restore_params(self, step: int | str) -> tuple[dict[str, Any], dict]:
        """(prompt params, info) of `step`: "best", "latest" or a number."""
        if step == "best":
            best = self._best.latest_step()
            if best is None:
                raise ValueError(f"{self.model_dir} has no best checkpoint yet (no evaluation ran).")
            restored = self._best.restore(best, args=ocp.args.Composite(
                params=ocp.args.StandardRestore(), info=ocp.args.JsonRestore()))
            return dict(restored["params"]), {**restored["info"], "step": best}
        steps = self.all_steps()
        number = self.latest_step() if step == "latest" else int(step)
        if number is None or number not in steps:
            raise ValueError(f"{self.model_dir} has no checkpoint for step {step!r}; "
                             f"available: {steps or 'none'} and 'best'.")
        restored = self._latest.restore(number, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(), progress=ocp.args.JsonRestore()))
        return dict(restored["state"]["params"]), {**restored["progress"], "step": number}

    def close(self) -> None:
        self._latest.close()
        self._best.close()
