"""A run's checkpoints in MODEL_DIR, with orbax: only what training changes is saved.

Layout (see also `identity` for run.json and `lock` for run.lock):
  MODEL_DIR/checkpoints/<step>/       TrainState (prompt, optimizer state, step) + progress JSON
                                      (best so far, and every evaluation's score by step) + a
                                      copy of the best prompt so far and its info
  MODEL_DIR/best/<step>/              the prompt with the best dev metric so far + its metrics
Every step directory also holds the checksums of its arrays (`step_io`, `integrity`), checked
on every read: a damaged array is an error, never a silently wrong prompt.

The frozen model is never copied: it is read from INITIAL_CHECKPOINT_PATH. The data position is
the step (each step consumes one batch of a deterministic pipeline), and dropout keys derive from
the seed and the step, so a resumed run continues bit-identically.

A run may be SIGKILLed at any moment and restarted (tests/launch/test_resume.py):
* orbax writes a step into `<step>.orbax-checkpoint-tmp` and renames it when complete, so a
  `<step>` directory is always whole. Deleting is a rename too (into `being_deleted/`, emptied
  right after), so a step directory is never half deleted either. Leftovers of a killed run are
  removed before the next save and when the writer closes.
* A new best prompt is written before the old one is deleted and before the step checkpoint that
  records it. A run killed in between resumes from an earlier step, reaches the same evaluation
  with the same prompt (resume is exact) and finds that best prompt already written.
* best/ is not the only copy of the best prompt: each step checkpoint carries the best as of
  that step. A best/ that was lost (or deleted because it was damaged) is read from the newest
  step checkpoint's copy, and a resumed run writes best/ again from it.
* Keep-N holds after every save, and again when a writer closes: a run killed between its last
  save and the deletion of older steps is tidied by its restart, which has nothing to train.
* Opening a writer creates nothing, so MODEL_DIR holds only run.json (and run.lock) until the
  first save; opening a reader never writes (it must not delete a live run's temporary
  directory, nor create folders in a mistyped MODEL_DIR). A reader of a live run retries when
  the writer deletes the step it was reading.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Optional, Union

import jax
import numpy as np
import orbax.checkpoint as ocp

from prompt_tuning import errors, filesystem, notes
from prompt_tuning.run_dir import integrity, step_io
from prompt_tuning.run_dir.step_io import TRASH_DIR, StepRemoved

PyTree = Any
Best = tuple[dict[str, Any], dict]  # (prompt params, info with "step")
STEP_ITEMS = {"state": "arrays", "progress": "json", "best": "arrays", "best_info": "json"}
BEST_ITEMS = {"params": "arrays", "info": "json"}
COPY = ("best", "best_info")  # optional: steps written before copies were kept lack them
# A live run's writer may replace the step a reader chose this many times before it gives up.
ATTEMPTS = 5

__all__ = ["RunCheckpoints", "TRASH_DIR"]
LISTING_ATTEMPTS, LISTING_PAUSE_S = 10, 0.1


class RunCheckpoints:
    """Latest-N training checkpoints and the best prompt of a run.

    Readers (the default) only read. The training loop opens the one writer of a run with
    `writer=True`; `keep` (N) applies to it.
    """

    def __init__(self, model_dir: str, keep: Optional[int] = 2, *, writer: bool = False):
        if writer and keep is not None and keep < 1:
            raise errors.UsageError(f"CHECKPOINTS_TO_KEEP must be >= 1, got {keep}.")
        self.model_dir = model_dir
        self.writer = writer
        self._keep = keep
        self._latest = step_io.open_manager(filesystem.join(model_dir, "checkpoints"), keep, writer,
                                            STEP_ITEMS)
        # Several best steps may briefly coexist (the new one is written before the old one is
        # deleted), so orbax must not prune them by step number: we do.
        self._best = step_io.open_manager(filesystem.join(model_dir, "best"), None, writer,
                                          BEST_ITEMS)
        # The writer's best prompt so far (step, {path: host array}, info): copied into every
        # step checkpoint it saves.
        self._best_copy: Optional[tuple[int, dict[str, np.ndarray], dict]] = None
        self._noted_unverified = False

    # --- Steps ------------------------------------------------------------------------------
    def latest_step(self, reload: bool = False) -> Optional[int]:
        """The newest step checkpoint; `reload` re-reads the directory (another writer?)."""
        if reload:
            step_io.reload(self._latest)
        return self._latest.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._latest.all_steps())

    def best_step(self) -> Optional[int]:
        return self._best.latest_step()

    def _require_writer(self) -> None:
        if not self.writer:
            raise RuntimeError("RunCheckpoints opened for reading; use writer=True to save.")

    def _step_number(self, step: Union[int, str]) -> int:
        # A reader of a live run may list the steps at the instant the writer's keep-N moves
        # the only one away (it renames the old step after committing the new one, and orbax's
        # listing may see neither): "none" or "latest" is looked at again, briefly.
        for attempt in range(LISTING_ATTEMPTS):
            steps = self.all_steps()
            number = self.latest_step() if step == "latest" else int(step)
            if number is not None and number in steps:
                return number
            if self.writer or (steps and step != "latest") or attempt == LISTING_ATTEMPTS - 1:
                break
            time.sleep(LISTING_PAUSE_S)
            step_io.reload(self._latest)
        raise errors.UserError(f"{self.model_dir} has no checkpoint for step {step!r}; "
                               f"available: {steps or 'none'} and 'best'.")

    # --- Writing ----------------------------------------------------------------------------
    def _last_good(self) -> str:
        last, where = self._latest.latest_step(), str(self._latest.directory)
        if last is None:
            return f"no step checkpoint was saved yet in {where}"
        return f"the last good checkpoint is step {last} in {where}"

    def save(self, state: PyTree, progress: Mapping[str, Any]) -> None:
        """Commits the step checkpoint (orbax then deletes the steps beyond keep-N)."""
        self._require_writer()
        step = int(jax.device_get(state.step))
        if step in self._latest.all_steps():
            return
        arrays: dict[str, Any] = {"state": state}
        records: dict[str, Any] = {"progress": dict(progress)}
        if self._best_copy is not None:
            best_step, params, info = self._best_copy
            arrays["best"] = params
            records["best_info"] = {**info, "step": best_step}
        step_io.write(self._latest, step, arrays, records, "checkpoint", self._last_good())

    def save_best(self, step: int, prompt_params: Mapping[str, jax.Array],
                  info: Mapping[str, Any]) -> None:
        """Makes `step` the best prompt: written first, then the previous best is deleted.

        A best step already on disk was written by an identical, killed earlier attempt of this
        run (resume is exact), so it is kept as it is.
        """
        self._require_writer()
        # A host copy: the train step donates the state's buffers.
        self._best_copy = (step, {k: integrity.host_array(v) for k, v in prompt_params.items()},
                           dict(info))
        if step not in self._best.all_steps():
            self._write_best(step, dict(prompt_params), dict(info))
        for old in self._best.all_steps():
            if old != step:
                self._best.delete(old)
        step_io.remove_leftovers(str(self._best.directory))

    def _write_best(self, step: int, params: dict[str, Any], info: dict) -> None:
        step_io.write(self._best, step, {"params": params}, {"info": info}, "best prompt",
                      self._last_good())

    def restore(self, abstract_state: PyTree, step: Optional[int] = None
                ) -> tuple[PyTree, dict]:
        """The writer's resume: (TrainState on `abstract_state`'s shardings, progress)."""
        step = self.latest_step() if step is None else step
        wanted = {"state": ocp.args.StandardRestore(abstract_state),
                  "progress": ocp.args.JsonRestore(), **self._copy_args(step)}
        try:
            restored = self._read(self._latest, step, wanted, ("state", "best"),
                                  self._step_advice)
        except StepRemoved as e:
            raise errors.RunDirError(f"MODEL_DIR {self.model_dir} was changed by another "
                                     "process while this one started; run again.") from e
        if "best" in restored:
            info = dict(restored["best_info"])
            self._best_copy = (int(info.pop("step")), {
                k: np.asarray(v) for k, v in restored["best"].items()}, info)
        return restored["state"], dict(restored["progress"])

    def restore_missing_best(self) -> Optional[str]:
        """Writes best/ again from the resumed step's copy if best/ holds no prompt (lost, or
        deleted as advised because it was damaged); returns a note saying so, or None."""
        self._require_writer()
        if self._best_copy is None or self._best.all_steps():
            return None
        step, params, info = self._best_copy
        self._write_best(step, params, info)
        return (f"{self._best.directory} held no best prompt; wrote it again (step {step}) from "
                "the copy kept in the step checkpoint.")

    # --- Reading ----------------------------------------------------------------------------
    def _read(self, manager: ocp.CheckpointManager, step: int, wanted: Mapping[str, Any],
              arrays: tuple[str, ...], advice) -> dict[str, Any]:
        restored = step_io.read(manager, step, wanted, arrays, advice, optional=COPY)
        if not self._noted_unverified and not step_io.has_checksums(manager, step):
            self._noted_unverified = True
            notes.note(f"checkpoint {step_io.step_dir(manager, step)} has no checksums (written "
                       "by an earlier release): it is read unverified.")
        return restored

    def _copy_args(self, step: int) -> dict[str, Any]:
        """Restore args of the step's copy of the best prompt; {} if it has none."""
        if not filesystem.isdir(filesystem.join(step_io.step_dir(self._latest, step), "best")):
            return {}
        target = step_io.local_target(self._latest, step, "best", self._step_advice)
        return {"best": ocp.args.StandardRestore(target), "best_info": ocp.args.JsonRestore()}

    def state_tree(self, step: Union[int, str] = "latest") -> tuple[dict[str, Any], dict]:
        """(the saved TrainState as a tree of arrays, progress + "step") of `step`.

        "latest" follows a live run: if its writer deletes the step while it is read, the new
        latest one is read.
        """
        for _ in range(ATTEMPTS):
            number = self._step_number(step)
            try:
                target = step_io.local_target(self._latest, number, "state", self._step_advice)
                restored = self._read(self._latest, number, {
                    "state": ocp.args.StandardRestore(target),
                    "progress": ocp.args.JsonRestore()}, ("state",), self._step_advice)
                return dict(restored["state"]), {**restored["progress"], "step": number}
            except StepRemoved:
                step_io.reload(self._latest)
                if step != "latest":
                    raise errors.UserError(
                        f"step {number} of {self.model_dir} was deleted by the run's writer "
                        "while it was read (a run keeps only its newest checkpoints); steps now: "
                        f"{self.all_steps() or 'none'} and 'best'.") from None
        raise self._kept_moving()

    def restore_params(self, step: Union[int, str]) -> Best:
        """(prompt params, info) of `step`: "best", "latest" or a number."""
        if step == "best":
            return self._read_best()
        state, progress = self.state_tree(step)
        return dict(state["params"]), progress

    def _read_best(self) -> Best:
        for _ in range(ATTEMPTS):
            best = self._best.latest_step()
            if best is None:
                return self._best_from_checkpoints()
            advice = lambda best=best: self._best_advice(best)
            try:
                target = step_io.local_target(self._best, best, "params", advice)
                restored = self._read(self._best, best, {
                    "params": ocp.args.StandardRestore(target),
                    "info": ocp.args.JsonRestore()}, ("params",), advice)
                return dict(restored["params"]), {**restored["info"], "step": best}
            except StepRemoved:  # the writer replaced it with a newer best
                step_io.reload(self._best)
        raise self._kept_moving()

    def _kept_moving(self) -> errors.UserError:
        return errors.UserError(f"{self.model_dir} changed {ATTEMPTS} times while it was read "
                                "(its run is writing it); run the command again.")

    # --- The best prompt's other copies ------------------------------------------------------
    def _copy_in(self, number: int) -> Optional[Best]:
        """The best prompt as recorded by step checkpoint `number`: its copy, or (for a step
        of an earlier release) the step itself when it is the recorded best; else None."""
        wanted = {"progress": ocp.args.JsonRestore(), **self._copy_args(number)}
        restored = self._read(self._latest, number, wanted, ("best",), self._step_advice)
        if "best" in restored:
            info = dict(restored["best_info"])
            return dict(restored["best"]), info
        progress = restored["progress"]
        best = progress.get("best_step")
        if best is None or "best_tasks" in progress or best not in self.all_steps():
            return None
        state, _ = self.state_tree(best)
        evaluation = (progress.get("evals") or {}).get(str(best), {})
        return dict(state["params"]), {"score": evaluation.get("score"),
                                       "metrics": evaluation.get("metrics"), "step": best}

    def _find_copy(self, wanted_step: Optional[int] = None) -> Optional[tuple[Best, int]]:
        """(the newest readable copy of the best prompt, the step checkpoint holding it); with
        `wanted_step`, only a copy of that best step."""
        for number in reversed(self.all_steps()):
            try:
                found = self._copy_in(number)
            except (StepRemoved, errors.UserError):  # a corrupt or vanished step too
                continue
            if found is not None and wanted_step in (None, found[1]["step"]):
                return found, number
        return None

    def _best_from_checkpoints(self) -> Best:
        """The best prompt when best/ holds none: from the newest step checkpoint's copy."""
        found = self._find_copy()
        if found is None:
            raise errors.UserError(f"{self.model_dir} has no best checkpoint yet (no "
                                   "evaluation ran).")
        (params, info), number = found
        notes.note(f"{self._best.directory} holds no best prompt; using the copy of the best "
                   f"prompt (step {info['step']}) kept in "
                   f"{step_io.step_dir(self._latest, number)}.")
        return params, info

    def _step_advice(self) -> str:
        return ("delete that step directory to go back to an earlier checkpoint (the best prompt "
                "in best/ is not affected), or choose a new MODEL_DIR.")

    def _best_advice(self, best: int) -> str:
        """What to do about a damaged best/<best>: delete it only if another copy exists."""
        found = self._find_copy(best)
        if found is not None:
            return (f"delete that directory: the same best prompt (step {best}) is kept in "
                    f"{step_io.step_dir(self._latest, found[1])}, which export, eval and a "
                    "resumed run then use.")
        return (f"the best prompt of step {best} has no other copy in this run, so do not delete "
                "it: restore it from a backup, or use another step (export_prompt "
                "--step=latest, CHECKPOINT_STEP).")

    # --- Closing ----------------------------------------------------------------------------
    def _tidy(self) -> None:
        """Keep-N and a single best prompt, whatever a killed earlier attempt left."""
        if self._keep is not None:
            for step in self.all_steps()[:-self._keep]:
                self._latest.delete(step)
        for step in list(self._best.all_steps())[:-1]:
            self._best.delete(step)
        for manager in (self._latest, self._best):
            step_io.remove_leftovers(step_io.manager_dir(manager))

    def close(self) -> None:
        try:
            if self.writer:
                self._tidy()
        finally:
            self._latest.close()
            self._best.close()
