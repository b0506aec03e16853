"""The training loop: restore or initialise, train, evaluate on the dev set, checkpoint, select.

One linear function in sections, like big_vision's trainer. Everything the user can get wrong
is checked before MODEL_DIR is touched. The loop does not know how evaluation works: it
receives a factory of `Evaluator`s (the eval package's `task_evaluator`, wired by the `train`
command), so training and evaluation never import each other.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

import jax
import numpy as np

from prompt_tuning import errors
from prompt_tuning import partitioning as partitioning_lib
from prompt_tuning import notes, run_dir, runtime
from prompt_tuning.runtime import host_memory
from prompt_tuning.data import pipeline
from prompt_tuning.model import Transformer, compute_params
from prompt_tuning.prompts import seam
from prompt_tuning.training import optim, selection, step as step_lib, train_steps, trainable
from prompt_tuning.training.config import TrainConfig
from prompt_tuning.training.summaries import ScalarWriter

PyTree = Any
Metrics = dict[str, dict[str, float]]


class Evaluator(Protocol):
    """What the loop needs of an evaluation: metrics of a parameter tree, and one number; and
    the text samples of the last evaluation ({task: {name: text}}, often empty)."""

    samples: Mapping[str, Mapping[str, str]]

    def evaluate(self, params: PyTree, step: Optional[int] = None) -> Metrics:
        ...

    def selection_score(self, metrics: Mapping[str, Mapping[str, float]]) -> float:
        ...


# (the prompted model, the frozen model's vocabulary, the run's placement, the shardings of the
# parameter tree the evaluator gets, a multi-task run's tasks in prompt-table row order or ()
# for one prompt) -> the evaluator of the run's dev set.
EvaluatorFactory = Callable[[Transformer, Any, runtime.Placement, PyTree, Sequence[str]],
                            Evaluator]


def _task_names(config: TrainConfig) -> list[str]:
    """The training task and, if another, the evaluation task: each must exist and have its
    split's data prepared (checked now, before anything is read or written)."""
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    train = config.train_dataset
    uses = [(train.mixture_or_task_name, train.split, train.use_cached)]
    if config.evaluation is not None:
        uses.append((config.evaluation.mixture_or_task_name, config.evaluation.split,
                     config.evaluation.use_cached))
    for name, split, use_cached in uses:
        tasks.check_split(name, split)
        tasks.check_prepared(name, split, use_cached)
    return list(dict.fromkeys(name for name, _, _ in uses))


def _split_trainable(prompt_params, frozen_params, patterns, frozen_shardings):
    """(trainable {path: array}, frozen tree, frozen shardings) by `PromptConfig.trainable`.

    The default trains the prompt alone; regexes may add frozen-model parameters (e.g. layer
    norms), which then train and are checkpointed with the prompt.
    """
    params = trainable.merge(prompt_params, frozen_params)
    paths = trainable.trainable_paths(params, patterns)
    trained, frozen_rest = trainable.split(params, paths)
    extra = [p for p in paths if not seam.is_prompt_path(p)]
    return trained, frozen_rest, partitioning_lib.frozen_shardings(frozen_shardings, extra)


def _check_steps(config: TrainConfig, start: int) -> None:
    if start > config.train_steps:
        raise errors.UserError(
            f"MODEL_DIR {config.model_dir} is already at step {start}, past TRAIN_STEPS="
            f"{config.train_steps}: nothing to train. Raise TRAIN_STEPS to continue the run, "
            "or export or evaluate it as it is.")


def train(config: TrainConfig, make_evaluator: Optional[EvaluatorFactory] = None,
          on_start: Optional[Callable[[str], Any]] = None) -> dict[str, Any]:
    """Prompt-tunes a frozen model; returns a summary (final/best metrics and steps).

    Args:
      config: the run (validated when it was built).
      make_evaluator: builds the dev-set evaluator; required when `config.evaluation` is set.
      on_start: runs once MODEL_DIR is this run's (the launcher saves the operative gin
        config there).
    """
    # --- Validate everything before touching MODEL_DIR -------------------------------------
    if config.evaluation is not None and make_evaluator is None:
        raise TypeError("train(): config.evaluation is set but no make_evaluator was given.")
    host = jax.process_index()
    lock = run_dir.lock_for(config.model_dir)
    if host == 0:
        lock.check()  # another live writer: refused at once, before any work
    task_names = _task_names(config)
    identity = config.identity()
    for note in run_dir.check_model_dir(config.model_dir, identity):
        notes.note(note)
    placement = runtime.Placement.of(config.partitioning)
    mesh, rules = placement.mesh, placement.rules
    partitioning_lib.check_batch_size(config.train_dataset.batch_size, mesh)
    layout = partitioning_lib.data_layout(mesh)
    # Kept as stored until the trained paths are known (see compute_params below).
    frozen, frozen_shardings = placement.load_frozen(config.model, compute_copy=False)
    steps, steps_note = train_steps.prompt_steps(config.train_steps, frozen.step)
    config = dataclasses.replace(config, train_steps=steps)
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel
    for name in task_names:
        tasks.check_vocabulary(name, frozen.vocabulary)
    prompt_tasks = _prompt_tasks(config)
    num_prompts = len(prompt_tasks) or None  # a table: one prompt per task
    net = runtime.model_for_training(frozen, config.prompt, num_prompts)

    # --- State: resume from MODEL_DIR, or a fresh prompt ----------------------------------
    tx = optim.adafactor(config.optimizer)
    init_rng, dropout_root = jax.random.split(jax.random.PRNGKey(config.seed))
    trained, frozen_params, frozen_shardings = _split_trainable(
        runtime.init_prompt(config.prompt, frozen, init_rng, num_prompts), frozen.params,
        config.prompt.trainable, frozen_shardings)
    vocabulary = frozen.vocabulary
    # What does not train is kept as the step computes with it (16-bit kernels under a 16-bit
    # ACTIVATION_DTYPE); the stored copy goes with the loaded model (the prompt was initialised
    # from it above).
    del frozen
    frozen_params = compute_params(frozen_params, net.config)
    evaluator = None
    if config.evaluation is not None:  # on the training mesh, the trained part replicated
        eval_shardings = trainable.merge(
            jax.tree.map(lambda _: placement.replicated(), trained), frozen_shardings)
        evaluator = make_evaluator(net, vocabulary, placement, eval_shardings, prompt_tasks)
    state = partitioning_lib.shard_train_state(step_lib.TrainState.create(trained, tx), mesh)
    runs = run_dir.RunCheckpoints(config.model_dir, keep=config.checkpoint.keep, writer=True)
    record: dict[str, Any] = {"best_score": None, "best_step": None, "best_metrics": None,
                              "evals": {}}
    try:
        if runs.latest_step() is not None:  # restored first: a bad checkpoint fails before any write
            # Restored onto this run's shardings, whatever topology saved it.
            state, restored = runs.restore(jax.tree.map(
                lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state))
            record.update(restored)
        start = int(state.step)
        _check_steps(config, start)
        if host == 0:
            lock.acquire()
            if lock.took_over:
                notes.note(f"took over the lock of {lock.took_over}, which is gone.")
            if runs.latest_step(reload=True) != (start or None):
                raise errors.RunDirError(f"MODEL_DIR {config.model_dir} was written by another "
                                         "process while this one started; run again.")
        if host == 0:  # what a run writes once
            run_dir.write_run_file(config.model_dir, identity)
            if on_start is not None:
                on_start(config.model_dir)
        rewritten = runs.restore_missing_best()  # best/ lost or deleted: back from the copy
        if rewritten:
            notes.note(rewritten)
        notes.note(steps_note)  # once every check has passed: the run starts
        if start == config.train_steps:
            notes.note(f"{config.model_dir} is already at TRAIN_STEPS={start}: nothing to train.")
        elif start:
            notes.note(f"resumed {config.model_dir} at step {start} of {config.train_steps}.")
        summary = _train_from(config, start, state, runs, record, net, tx, frozen_params,
                              frozen_shardings, evaluator, mesh, rules, layout, dropout_root,
                              prompt_tasks)
    finally:
        runs.close()
        lock.release()
    return summary


def _prompt_tasks(config: TrainConfig) -> list[str]:
    """The tasks of a multi-task run (MULTI_TASK), one prompt each; [] for one prompt."""
    if not config.train_dataset.prompt_per_task:
        return []
    from prompt_tuning.data import multitask  # pylint: disable=import-outside-toplevel
    return multitask.prompt_tasks(config.train_dataset.mixture_or_task_name,
                                  config.train_dataset.split)


def _train_from(config: TrainConfig, start: int, state, runs, record, net, tx, frozen_params,
                frozen_shardings, evaluator: Optional[Evaluator], mesh, rules, layout,
                dropout_root, prompt_tasks: Sequence[str] = ()) -> dict[str, Any]:
    """The steps from `start` to `config.train_steps`: train, log, evaluate, checkpoint
    (`prompt_tasks`: a multi-task run's tasks, one prompt each)."""
    host = jax.process_index()
    # From a checkpoint the run redoes the steps after it; from nothing, the step-0 evaluation.
    redo_from = start + 1 if start else 0
    train_writer = ScalarWriter(f"{config.model_dir}/train" if host == 0 else None, redo_from)
    eval_writer = ScalarWriter(f"{config.model_dir}/validation" if host == 0 else None, redo_from)
    train_step = partitioning_lib.jit_train_step(
        step_lib.make_train_step(net, tx, config.loss, config.num_microbatches), mesh,
        partitioning_lib.state_shardings(state, mesh), frozen_shardings,
        partitioning_lib.batch_sharding(mesh), rules)

    def run_eval(step: int) -> dict:
        metrics = evaluator.evaluate(trainable.merge(state.params, frozen_params), step)
        score = evaluator.selection_score(metrics)
        eval_writer.write(step, {f"{t}/{m}": v for t, ms in metrics.items()
                                 for m, v in ms.items()} | {"selection_score": score})
        eval_writer.write_texts(step, {f"{t}/{n}": text for t, texts in evaluator.samples.items()
                                       for n, text in texts.items()})
        record["evals"][str(step)] = {"score": score, "metrics": metrics}
        if prompt_tasks:  # each task's prompt selected on its own metrics
            table = np.asarray(jax.device_get(state.params[seam.PATH]), np.float32)
            best = selection.update_per_task(record, prompt_tasks, metrics, step, table,
                                             best_table.get("value"), evaluator.selection_score)
            if best is not None:
                best_table["value"] = best[0]
                runs.save_best(step, {seam.PATH: best[0]}, best[1])
        elif record["best_score"] is None or score > record["best_score"]:
            record.update(best_score=score, best_step=step, best_metrics=metrics)
            runs.save_best(step, state.params, {"score": score, "metrics": metrics})
        return {"metrics": metrics, "score": score}

    best_table: dict[str, Any] = {}  # a multi-task run's best prompts so far, row by row
    if prompt_tasks and runs.best_step() is not None:
        best_table["value"] = np.asarray(runs.restore_params("best")[0][seam.PATH], np.float32)

    summary: dict[str, Any] = {"start_step": start}
    if evaluator is not None and start == 0:
        summary["initial_eval"] = run_eval(0)
    batches = pipeline.batches(config.train_dataset, start, layout.shard_id, layout.num_shards)
    bar = _progress_bar(config.progress and host == 0, config.train_steps)
    tick, tick_step = time.time(), start
    step = start
    try:
        for step in range(start + 1, config.train_steps + 1):
            batch = partitioning_lib.global_batch(next(batches), mesh)
            step_rng = jax.random.fold_in(dropout_root, step)
            if step == start + 1:  # compiled first, then what compiling freed goes back to the
                # OS before the step's own buffers are allocated (a lower peak; host_memory.py)
                train_step = train_step.compiled(state, frozen_params, batch, step_rng)
                host_memory.release()
            new_state, metrics = train_step(state, frozen_params, batch, step_rng)
            loss_value = float(metrics["loss"])
            # The loss is that of the old prompt; the updated prompt is checked as well, so a
            # checkpoint never holds a non-finite one.
            if not math.isfinite(loss_value) or not bool(metrics["params_finite"]):
                raise _diverged(config, runs, step, loss_value)
            state = new_state
            last = step == config.train_steps
            if step % config.log_period == 0 or last:
                rate = (step - tick_step) / max(time.time() - tick, 1e-9)
                tick, tick_step = time.time(), step
                per_token = loss_value / max(float(metrics["num_tokens"]), 1.0)
                train_writer.write(step, {
                    "loss": loss_value, "loss_per_token": per_token,
                    "cross_entropy": float(metrics["cross_entropy"]),
                    "z_loss": float(metrics["z_loss"]), "grad_norm": float(metrics["grad_norm"]),
                    "learning_rate": float(optim.learning_rate_schedule(config.optimizer)(step)),
                    "steps_per_sec": rate,
                    "examples_per_sec": rate * config.train_dataset.batch_size})
                bar(step, f"loss/token {per_token:.4f}  {rate:.2f} steps/s")
            if evaluator is not None and (step % config.eval_period == 0 or last):
                summary["final_eval"] = run_eval(step)
            if step % config.checkpoint.period == 0 or last:
                runs.save(state, record)
    finally:
        bar(None, "")
        train_writer.close()
        eval_writer.close()
    summary.update(final_step=step, best_step=record["best_step"],
                   best_score=record["best_score"], best_metrics=record["best_metrics"],
                   prompt=np.asarray(partitioning_lib.host_local(state.params[seam.PATH])))
    return summary


def _diverged(config: TrainConfig, runs, step: int, loss_value: float
              ) -> errors.TrainingDivergedError:
    what = (f"loss became {loss_value}" if not math.isfinite(loss_value)
            else "the update made the prompt non-finite")
    last = runs.latest_step()
    where = (f"The last good checkpoint is step {last} in {config.model_dir}." if last is not None
             else f"No checkpoint was saved in {config.model_dir}.")
    return errors.TrainingDivergedError(f"{what} at step {step}; stopped. {where} Lower the "
                                        "learning rate or check the data.")


def _progress_bar(enabled: bool, total: int):
    """Progress on stderr: `step 120/1000 [####......] loss/token 0.53  4.1 steps/s`, one line
    rewritten in place on a terminal, a line per update in a log file."""
    in_place = sys.stderr.isatty()

    def show(step: Optional[int], text: str) -> None:
        if not enabled:
            return
        if step is None:
            if in_place:
                sys.stderr.write("\n")
            return
        filled = int(30 * step / total)
        line = f"step {step}/{total} [{'#' * filled}{'.' * (30 - filled)}] {text}"
        sys.stderr.write(f"\r{line}" if in_place else f"{line}\n")
        sys.stderr.flush()

    return show
