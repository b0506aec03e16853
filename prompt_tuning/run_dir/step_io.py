"""Reading and writing one step directory of a run with orbax: verified, and honest on failure.

A step directory holds array items (orbax's StandardCheckpointHandler), JSON items, and the
`integrity` JSON item with the checksums of every array item (`integrity.record`), all
committed together by orbax's rename. Here:

* `write` commits a step; a failure (a full disk above all) becomes one line naming the step
  directory, with orbax's threads kept off the terminal; SIGINT waits until the commit is done.
* `read` restores the items a step has (older steps lack the newer optional items) and checks
  the arrays against their checksums. A read that fails because the step directory is gone (the
  run's writer deleted it under keep-N while we read) raises `StepRemoved`, which callers retry
  or report as such: a step removed by its writer is never called corrupt.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Any, Callable, Mapping, Optional

import jax
import orbax.checkpoint as ocp

from prompt_tuning import errors, filesystem, interrupts, out_of_space, stderr_guard
from prompt_tuning.errors import CorruptCheckpointError
from prompt_tuning.run_dir import integrity

# Where orbax moves a step it deletes (an atomic rename); emptied right after.
TRASH_DIR = "being_deleted"
INTEGRITY = "integrity"
Advice = Callable[[], str]


class StepRemoved(Exception):
    """The step directory disappeared while it was read (deleted by the run's writer)."""


def step_dir(manager: ocp.CheckpointManager, step: int) -> str:
    return filesystem.join(manager_dir(manager), str(step))


def open_manager(directory: str, keep: Optional[int], writer: bool,
                 items: Mapping[str, str]) -> ocp.CheckpointManager:
    """A manager of steps holding `items` ({name: "arrays" or "json"}) and their checksums."""
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
    # Handlers named up front let `item_metadata` read shapes before a restore (`local_target`).
    handlers = {name: (ocp.StandardCheckpointHandler() if kind == "arrays"
                       else ocp.JsonCheckpointHandler()) for name, kind in items.items()}
    handlers[INTEGRITY] = ocp.JsonCheckpointHandler()
    return _listing(directory, lambda: ocp.CheckpointManager(directory, options=options,
                                                             item_handlers=handlers))


def reload(manager: ocp.CheckpointManager) -> None:
    """Lists the steps again (a live run's writer may have added or deleted some)."""
    _listing(manager_dir(manager), manager.reload)


def _listing(directory: str, call: Callable[[], Any], attempts: int = 5) -> Any:
    """`call()`, which lists the steps of `directory`, again if the run's writer deleted a
    step between orbax's listing and its reading of that step's metadata."""
    for attempt in range(attempts):
        try:
            return call()
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            if attempt == attempts - 1:
                raise errors.UserError(f"{directory} kept changing while its steps were listed "
                                       "(its run is writing it); run the command again.") from e
            time.sleep(0.01)
    raise AssertionError("unreachable")


def manager_dir(manager: ocp.CheckpointManager) -> str:
    """The manager's directory as a path string (a `gs://` URL stays one)."""
    return os.fspath(manager.directory)


def remove_leftovers(directory: str) -> None:
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


# --- Writing --------------------------------------------------------------------------------
def write(manager: ocp.CheckpointManager, step: int, arrays: Mapping[str, Any],
          records: Mapping[str, Mapping[str, Any]], what: str, last_good: str) -> None:
    """Commits `step` holding the array trees `arrays` and the JSON `records`, with checksums.

    Args:
      what: what the step is, for an error ("checkpoint", "best prompt").
      last_good: the sentence an error ends with (the last good checkpoint).
    """
    items = {name: ocp.args.StandardSave(tree) for name, tree in arrays.items()}
    items.update({name: ocp.args.JsonSave(dict(value)) for name, value in records.items()})
    items[INTEGRITY] = ocp.args.JsonSave(integrity.record(arrays))
    directory = manager_dir(manager)
    filesystem.makedirs(directory)
    remove_leftovers(directory)
    try:
        with interrupts.deferred(), stderr_guard.silenced_if_failing():
            # force: `should_save` refuses a step below the newest one, which `best/` may hold.
            manager.save(step, args=ocp.args.Composite(**items), force=True)
            manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
        raise _write_error(manager, step, what, last_good, e) from e
    remove_leftovers(directory)  # the steps orbax just moved to TRASH_DIR


def _write_error(manager: ocp.CheckpointManager, step: int, what: str, last_good: str,
                 error: BaseException) -> errors.CheckpointError:
    where = step_dir(manager, step)
    full = out_of_space.reason(error)
    if full:
        return errors.CheckpointError(
            f"{where}: {full}: the {what} of step {step} could not be written; {last_good}. "
            f"Nothing half-written is kept: {out_of_space.HINT} to resume.")
    return errors.CheckpointError(
        f"{where}: the {what} of step {step} could not be written ({first_line(error)}); "
        f"{last_good}. Check MODEL_DIR's file system and run the same command again to resume.")


# --- Reading --------------------------------------------------------------------------------
def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    detail = lines[0] if lines else type(error).__name__
    return detail if len(detail) <= 160 else detail[:157] + "..."


def _items_present(manager: ocp.CheckpointManager, step: int, wanted: Mapping[str, Any],
                   optional: tuple[str, ...]) -> dict[str, Any]:
    """The wanted items, less the `optional` ones this step lacks (an older step's)."""
    directory = step_dir(manager, step)
    if not filesystem.isdir(directory):
        raise StepRemoved(directory)
    return {name: args for name, args in wanted.items()
            if name not in optional or filesystem.isdir(filesystem.join(directory, name))}


def _unreadable(manager: ocp.CheckpointManager, step: int, error: BaseException,
                advice: Advice) -> BaseException:
    """StepRemoved if the step is gone (its writer deleted it), else the corrupt-step error."""
    where = step_dir(manager, step)
    if not filesystem.isdir(where):
        return StepRemoved(where)
    return CorruptCheckpointError(f"checkpoint {where} cannot be read (corrupt or truncated?); "
                                  f"{advice()} orbax says: {first_line(error)}")


def local_target(manager: ocp.CheckpointManager, step: int, item: str, advice: Advice) -> Any:
    """Shapes and dtypes of a saved item, placed on this process's first device.

    Readers (eval, export) may run on another topology than the run that saved (a pod's
    checkpoint read on a laptop); orbax restores onto the saved shardings unless told otherwise.
    """
    try:
        with stderr_guard.silenced_if_failing():
            metadata = manager.item_metadata(step)[item]
    except Exception as e:  # pylint: disable=broad-except
        raise _unreadable(manager, step, e, advice) from e
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    tree = getattr(metadata, "tree", metadata)
    return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)


def read(manager: ocp.CheckpointManager, step: int, wanted: Mapping[str, Any],
         arrays: tuple[str, ...], advice: Advice, optional: tuple[str, ...] = ()
         ) -> dict[str, Any]:
    """{item: value} of the `wanted` items ({name: orbax restore args}); of the `optional`
    ones, those the step has.

    The array items named in `arrays` are checked against the step's checksums (a step
    written before checksums were recorded is read unverified). Raises StepRemoved, or
    CorruptCheckpointError ending with `advice()`.
    """
    present = _items_present(manager, step, {**wanted, INTEGRITY: ocp.args.JsonRestore()},
                             (*optional, INTEGRITY))
    try:
        with stderr_guard.silenced_if_failing():
            restored = dict(manager.restore(step, args=ocp.args.Composite(**present)))
    except Exception as e:  # pylint: disable=broad-except
        raise _unreadable(manager, step, e, advice) from e
    record = restored.pop(INTEGRITY, None)
    for name in arrays:
        expected = integrity.recorded(record, name)
        if name not in restored or expected is None:
            continue
        differ = integrity.mismatches(restored[name], expected)
        if differ:
            where = step_dir(manager, step)
            if not filesystem.isdir(where):
                raise StepRemoved(where)
            shown = ", ".join(differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3
                                             else "")
            raise CorruptCheckpointError(
                f"checkpoint {where} is damaged: {len(differ)} array(s) of its {name} ({shown}) "
                f"do not match the checksums recorded when they were written; {advice()}")
    return restored


def has_checksums(manager: ocp.CheckpointManager, step: int) -> bool:
    return filesystem.isdir(filesystem.join(step_dir(manager, step), INTEGRITY))
