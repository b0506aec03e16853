"""A run's checkpoints in MODEL_DIR, with orbax: only what training changes is saved.

Layout (see also `identity` for run.json and `lock` for run.lock):
  MODEL_DIR/checkpoints/<step>/       TrainState (prompt, optimizer state, step) + progress JSON
                                      (best so far, and every evaluation's score by step)
  MODEL_DIR/best/<step>/              the prompt with the best dev metric so far + its metrics

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
* Keep-N holds after every save, and again when a writer closes: a run killed between its last
  save and the deletion of older steps is tidied by its restart, which has nothing to train.
* Opening a writer creates nothing, so MODEL_DIR holds only run.json (and run.lock) until the
  first save; opening
  a reader never writes (it must not delete a live run's temporary directory, nor create folders
  in a mistyped MODEL_DIR).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Union

import jax
import orbax.checkpoint as ocp

from prompt_tuning import errors, filesystem, stderr_guard
from prompt_tuning.errors import CorruptCheckpointError

PyTree = Any
# Where orbax moves a step it deletes (an atomic rename); emptied right after.
TRASH_DIR = "being_deleted"


def _read(manager: ocp.CheckpointManager, step: int, args: Any) -> Any:
    """`manager.restore`, with any failure to read reported as one clear error.

    orbax and tensorstore raise bare Exceptions (with multi-line tensorstore specs) for a
    truncated or missing file; a user needs the step directory and what to do about it.
    """
    try:
        with stderr_guard.silenced_if_failing():
            return manager.restore(step, args=args)
    except Exception as e:  # pylint: disable=broad-except
        raise _corrupt(manager, step, e) from e


def _corrupt(manager: ocp.CheckpointManager, step: int, error: BaseException
             ) -> CorruptCheckpointError:
    where = os.path.join(str(manager.directory), str(step))
    return CorruptCheckpointError(
        f"checkpoint {where} cannot be read (corrupt or truncated?); delete that step "
        f"directory to go back to an earlier checkpoint, or choose a new MODEL_DIR. "
        f"orbax says: {_first_line(error)}")


def _local_target(manager: ocp.CheckpointManager, step: int, item: str) -> Any:
    """Shapes and dtypes of a saved item, placed on this process's first device.

    Readers (eval, export) may run on another topology than the run that saved (a pod's
    checkpoint read on a laptop); orbax restores onto the saved shardings unless told otherwise.
    """
    try:
        with stderr_guard.silenced_if_failing():
            metadata = manager.item_metadata(step)[item]
    except Exception as e:  # pylint: disable=broad-except
        raise _corrupt(manager, step, e) from e
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    tree = getattr(metadata, "tree", metadata)
    return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    detail = lines[0] if lines else type(error).__name__
    return detail if len(detail) <= 160 else detail[:157] + "..."


def _manager(directory: str, keep: Optional[int], writer: bool, arrays: str, json_item: str
             ) -> ocp.CheckpointManager:
    """A manager of steps holding a tree of arrays (`arrays`) and a JSON record (`json_item`)."""
    if not writer:
        # Not orbax's read_only, which logs a warning per manager into every CLI's output: with
        # create=False and no pruning, a manager writes nothing until told to save or delete,
        # which only the writer does.
        options = ocp.CheckpointManagerOptions(create=False, max_to_keep=None,
                                               enable_async_checkpointing=False)
    else:
        # Synchronous saves: `save` returns once the step is committed, so the loop never runs
        # ahead of what is on disk. `create=False`: directories appear at the first save.
        # Deleting by renaming into TRASH_DIR is atomic on a local disk only; in an object
        # store a rename is copies and deletions, so orbax deletes in place there.
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=False, enable_async_checkpointing=False,
            todelete_subdir=None if filesystem.is_remote(directory) else TRASH_DIR)
    # Handlers named up front let `item_metadata` read shapes before a restore (`_local_target`).
    handlers = {arrays: ocp.StandardCheckpointHandler(), json_item: ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(directory, options=options, item_handlers=handlers)


def _remove_leftovers(directory: str) -> None:
    """Removes what a killed writer left half done: orbax temporaries and deleted steps.

    Only the writer of a run calls this, between its own saves, so nothing here can belong to a
    save in progress. With several hosts only the primary one, orbax's, does it: it alone
    creates and renames step directories, and only inside `save`, which every host enters.
    """
    if jax.process_index() != 0 or not filesystem.isdir(directory):
        return
    for name in filesystem.listdir(directory):
        if ocp.path.step.TMP_DIR_SUFFIX in name or name == TRASH_DIR:
            filesystem.rmtree(filesystem.join(directory, name))


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
        self._latest = _manager(filesystem.join(model_dir, "checkpoints"), keep, writer,
                                "state", "progress")
        # Several best steps may briefly coexist (the new one is written before the old one is
        # deleted), so orbax must not prune them by step number: we do.
        self._best = _manager(filesystem.join(model_dir, "best"), None, writer, "params", "info")

    def _directory(self, manager: ocp.CheckpointManager) -> str:
        """The manager's directory as the user wrote it (epath spells gs:// URLs its own way)."""
        return filesystem.join(self.model_dir,
                               "checkpoints" if manager is self._latest else "best")

    def latest_step(self, reload: bool = False) -> Optional[int]:
        """The newest step checkpoint; `reload` re-reads the directory (another writer?)."""
        if reload:
            self._latest.reload()
        return self._latest.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._latest.all_steps())

    def _require_writer(self) -> None:
        if not self.writer:
            raise RuntimeError("RunCheckpoints opened for reading; use writer=True to save.")

    def _save(self, manager: ocp.CheckpointManager, step: int, args: ocp.args.Composite) -> None:
        directory = self._directory(manager)
        filesystem.makedirs(directory)
        _remove_leftovers(directory)
        # force: `should_save` refuses a step below the newest one, which `best/` may hold.
        manager.save(step, args=args, force=True)
        manager.wait_until_finished()
        _remove_leftovers(directory)  # the steps orbax just moved to TRASH_DIR

    def save(self, state: PyTree, progress: Mapping[str, Any]) -> None:
        """Commits the step checkpoint (orbax then deletes the steps beyond keep-N)."""
        self._require_writer()
        step = int(jax.device_get(state.step))
        if step in self._latest.all_steps():
            return
        self._save(self._latest, step, ocp.args.Composite(
            state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(dict(progress))))

    def restore(self, abstract_state: PyTree, step: Optional[int] = None
                ) -> tuple[PyTree, dict]:
        step = self.latest_step() if step is None else step
        restored = _read(self._latest, step, ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), progress=ocp.args.JsonRestore()))
        return restored["state"], dict(restored["progress"])

    def save_best(self, step: int, prompt_params: Mapping[str, jax.Array],
                  info: Mapping[str, Any]) -> None:
        """Makes `step` the best prompt: written first, then the previous best is deleted.

        A best step already on disk was written by an identical, killed earlier attempt of this
        run (resume is exact), so it is kept as it is.
        """
        self._require_writer()
        if step not in self._best.all_steps():
            self._save(self._best, step, ocp.args.Composite(
                params=ocp.args.StandardSave(dict(prompt_params)),
                info=ocp.args.JsonSave(dict(info))))
        for old in self._best.all_steps():
            if old != step:
                self._best.delete(old)
        _remove_leftovers(self._directory(self._best))

    def best_step(self) -> Optional[int]:
        return self._best.latest_step()

    def _step_number(self, step: Union[int, str]) -> int:
        steps = self.all_steps()
        number = self.latest_step() if step == "latest" else int(step)
        if number is None or number not in steps:
            raise errors.UserError(f"{self.model_dir} has no checkpoint for step {step!r}; "
                             f"available: {steps or 'none'} and 'best'.")
        return number

    def state_tree(self, step: Union[int, str] = "latest") -> tuple[dict[str, Any], dict]:
        """(the saved TrainState as a tree of arrays, progress + "step") of `step`."""
        number = self._step_number(step)
        restored = _read(self._latest, number, ocp.args.Composite(
            state=ocp.args.StandardRestore(_local_target(self._latest, number, "state")),
            progress=ocp.args.JsonRestore()))
        return dict(restored["state"]), {**restored["progress"], "step": number}

    def restore_params(self, step: Union[int, str]) -> tuple[dict[str, Any], dict]:
        """(prompt params, info) of `step`: "best", "latest" or a number."""
        if step == "best":
            best = self._best.latest_step()
            if best is None:
                raise errors.UserError(f"{self.model_dir} has no best checkpoint yet (no "
                                       "evaluation ran).")
            restored = _read(self._best, best, ocp.args.Composite(
                params=ocp.args.StandardRestore(_local_target(self._best, best, "params")),
                info=ocp.args.JsonRestore()))
            return dict(restored["params"]), {**restored["info"], "step": best}
        state, progress = self.state_tree(step)
        return dict(state["params"]), progress

    def _tidy(self) -> None:
        """Keep-N and a single best prompt, whatever a killed earlier attempt left."""
        if self._keep is not None:
            for step in self.all_steps()[:-self._keep]:
                self._latest.delete(step)
        for step in list(self._best.all_steps())[:-1]:
            self._best.delete(step)
        for manager in (self._latest, self._best):
            _remove_leftovers(self._directory(manager))

    def close(self) -> None:
        try:
            if self.writer:
                self._tidy()
        finally:
            self._latest.close()
            self._best.close()
